"""Protocol plumbing: the lesion label, and (slow) both protocols through ``seganypet_evaluate --protocol ...`` with
the real SegAnyPETSession on an untrained tiny model folder (file layout, step 0 = automatic, carried steps, scores).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from seganypet_nnunet.evaluation.protocols import lesion_label


def test_lesion_label():
    assert lesion_label({"background": 0, "brain": 1, "lesion": 11}) == 11
    assert lesion_label({"background": 0, "tumor": 1}) == 1
    assert lesion_label({"background": 0, "GTV": 2}) == 2
    with pytest.raises(ValueError, match="no lesion label"):
        lesion_label({"background": 0, "liver": 1, "spleen": 2})


def _write_clicks(raw_folder: Path, clicks_dir: Path) -> None:
    clicks_dir.mkdir()
    for f in sorted((raw_folder / "labelsTr").glob("*.nii.gz")):
        lab = sitk.GetArrayFromImage(sitk.ReadImage(str(f)))
        zyx = np.argwhere(lab == 1)
        tumour = [zyx[len(zyx) // 2][::-1].tolist(), zyx[0][::-1].tolist()]
        doc = {"tumor": tumour, "background": [[2, 2, 3], [20, 30, 35]]}
        (clicks_dir / f"{f.name[: -len('.nii.gz')]}_clicks.json").write_text(json.dumps(doc))


@pytest.mark.slow
def test_protocols_cli_with_real_session(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys):
    inference_data = pytest.importorskip("inference_data")
    from seganypet_nnunet.evaluation.evaluate_cli import evaluate_entry

    raw_folder, model = inference_data.setup_model(tmp_path, monkeypatch)
    _write_clicks(raw_folder, tmp_path / "clicks")
    base = ["seganypet_evaluate", "-i", str(raw_folder / "imagesTr"), "-ref", str(raw_folder / "labelsTr")]
    base += ["-m", str(model), "-device", "cpu"]
    monkeypatch.setattr(sys, "argv", [*base, "-o", str(tmp_path / "iv"), "--protocol", "autopet_iv"])
    with pytest.raises(SystemExit) as excinfo:
        evaluate_entry()
    assert excinfo.value.code == 1 and "-clicks" in capsys.readouterr().err
    monkeypatch.setattr(sys, "argv", [*sys.argv, "-clicks", str(tmp_path / "clicks")])
    evaluate_entry()
    preds = tmp_path / "iv" / "predictions"
    assert sorted(p.name for p in preds.iterdir()) == sorted(
        f"{c}_pred{k}.nii.gz" for c in ("case00", "case01") for k in range(11)
    )
    ref = sitk.ReadImage(str(raw_folder / "labelsTr" / "case00.nii.gz"))
    auto = sitk.ReadImage(str(tmp_path / "iv" / "automatic" / "case00.nii.gz"))
    for k in (0, 10):
        pred = sitk.ReadImage(str(preds / f"case00_pred{k}.nii.gz"))
        assert pred.GetSize() == ref.GetSize() and np.allclose(pred.GetDirection(), ref.GetDirection())
        assert set(np.unique(sitk.GetArrayFromImage(pred))) <= {0, 1}
    np.testing.assert_array_equal(  # step 0 = the automatic prediction's lesion label
        sitk.GetArrayFromImage(sitk.ReadImage(str(preds / "case00_pred0.nii.gz"))), sitk.GetArrayFromImage(auto) == 1
    )
    np.testing.assert_array_equal(  # only 2 click pairs: steps 3..10 carry step 2
        sitk.GetArrayFromImage(sitk.ReadImage(str(preds / "case00_pred2.nii.gz"))),
        sitk.GetArrayFromImage(sitk.ReadImage(str(preds / "case00_pred10.nii.gz"))),
    )
    score = json.loads((tmp_path / "iv" / "autopet_iv_score.json").read_text())
    assert len(score["summary"]["overall"]["per_step"]) == 11 and set(score["cases"]) == {"case00", "case01"}

    argv = [*base, "-o", str(tmp_path / "v"), "--protocol", "autopet_v", "-n_scribbles", "2"]
    monkeypatch.setattr(sys, "argv", [*argv, "-auto_pred", str(tmp_path / "iv" / "automatic")])
    evaluate_entry()
    v = json.loads((tmp_path / "v" / "autopet_v_score.json").read_text())
    assert len(v["cases"]["case00"]["steps"]) == 3 and 0.0 <= v["summary"]["score"] <= 1.0
    assert len(list((tmp_path / "v" / "predictions_autopet_v").iterdir())) == 6
    assert not (tmp_path / "v" / "automatic").exists()  # -auto_pred reused
