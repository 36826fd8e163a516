"""autoPET IV / V protocol plumbing: click order and carried steps, both click-JSON forms, DMM and the scribble case
score by hand, the scribble loop with a real deterministic prompter, and (slow) both protocols through
``seganypet_evaluate --protocol ...`` with the real SegAnyPETSession on an untrained tiny model folder.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from scipy import ndimage

from seganypet_nnunet.evaluation.autopet_iv import read_clicks, run_click_steps
from seganypet_nnunet.evaluation.autopet_v import (
    case_rng,
    detection_f1,
    run_scribble_steps,
    score_scribble_case,
    summarize_v,
)
from seganypet_nnunet.evaluation.protocols import lesion_label

SHAPE = (6, 8, 12)  # (z, y, x)


class CubePrompter:
    """Real, deterministic prompter: a click sets (positive) or clears (negative) the 3x3x3 cube around it; a
    scribble sets / clears the whole 26-connected reference component it touches. Logs every call."""

    def __init__(self, ref: np.ndarray | None = None) -> None:
        self.ref = ref
        self.log: list = []

    def start(self, initial: np.ndarray) -> None:
        self.log.append(("start", int(initial.sum())))
        self.mask = initial.copy()

    def click(self, coord_ijk, positive: bool) -> np.ndarray:
        self.log.append(("click", tuple(coord_ijk), positive))
        z, y, x = (int(c) for c in coord_ijk[::-1])
        self.mask[max(z - 1, 0) : z + 2, max(y - 1, 0) : y + 2, max(x - 1, 0) : x + 2] = positive
        return self.mask.copy()

    def scribble(self, mask_zyx: np.ndarray, positive: bool) -> np.ndarray:
        self.log.append(("scribble", int(mask_zyx.sum()), positive))
        target = self.ref if positive else self.mask
        labels, _ = ndimage.label(target, structure=np.ones((3, 3, 3)))
        ids = np.unique(labels[mask_zyx & target])
        self.mask = self.mask | np.isin(labels, ids[ids > 0]) if positive else self.mask & ~np.isin(labels, ids)
        return self.mask.copy()


def test_click_steps_pair_tumour_and_background_in_file_order():
    p = CubePrompter()
    initial = np.zeros(SHAPE, bool)
    initial[0, 0, 0] = True
    tumour = [(5.0, 4.0, 2.0), (1.0, 1.0, 1.0), (9.0, 6.0, 4.0)]  # (i, j, k) = (x, y, z)
    background = [(5.0, 4.0, 2.0)]
    masks = run_click_steps(p, initial, tumour, background, n_steps=5)
    assert p.log == [
        ("start", 1),
        ("click", (5.0, 4.0, 2.0), True),
        ("click", (5.0, 4.0, 2.0), False),  # step 1 = tumour 1 then background 1
        ("click", (1.0, 1.0, 1.0), True),  # step 2
        ("click", (9.0, 6.0, 4.0), True),  # step 3; step 4 has no click left
    ]
    assert len(masks) == 5 and masks[0].sum() == 1
    assert masks[1].sum() == 1  # the cube set by the tumour click was cleared by the background click
    assert masks[2][0:3, 0:3, 0:3].all() and masks[3][3:6, 5:8, 8:11].all()
    np.testing.assert_array_equal(masks[4], masks[3])


def test_read_clicks_both_forms(tmp_path: Path):
    img = sitk.Image([12, 8, 6], sitk.sitkUInt8)  # ITK size (i, j, k)
    repo = {"tumor": [[5, 4, 2], [1, 1, 1]], "background": [[11, 7, 5]]}
    gc = {
        "version": {"major": 1, "minor": 0},
        "type": "Multiple points",
        "points": [
            {"point": [5, 4, 2], "name": "tumor"},
            {"point": [11, 7, 5], "name": "background"},
            {"point": [1, 1, 1], "name": "tumor"},
        ],
    }
    for name, doc in (("repo.json", repo), ("gc.json", gc)):
        (tmp_path / name).write_text(json.dumps(doc))
        assert read_clicks(tmp_path / name, img) == ([(5, 4, 2), (1, 1, 1)], [(11, 7, 5)])
    (tmp_path / "bad.json").write_text(json.dumps({"tumor": [[12, 0, 0]]}))
    with pytest.raises(ValueError, match="outside the image"):
        read_clicks(tmp_path / "bad.json", img)


def _row(z, y, x0, x1) -> np.ndarray:
    m = np.zeros(SHAPE, bool)
    m[z, y, x0 : x1 + 1] = True
    return m


L1, L2 = _row(1, 1, 0, 9), _row(4, 4, 0, 9)  # two 10-voxel lesions


def test_detection_f1_iou_at_least_point_one():
    p1 = _row(1, 1, 0, 0)  # 1 voxel inside L1: IoU 1/10 = 0.1 -> detected
    p2 = _row(4, 4, 0, 0) | _row(4, 5, 0, 0)  # 1 of 2 voxels in L2: IoU 1/11 < 0.1 -> FP, and L2 missed
    assert detection_f1(p1 | p2, L1 | L2) == pytest.approx(2 / (2 + 1 + 1))
    assert detection_f1(L1, L1 | L2) == pytest.approx(2 / 3)
    assert math.isnan(detection_f1(p1, np.zeros(SHAPE, bool)))  # lesion-free: undefined


def test_scribble_case_score_by_hand():
    masks = [np.zeros(SHAPE, bool), L1, L1 | L2]
    out = score_scribble_case(masks, L1 | L2, (2.0, 2.0, 2.0))
    assert [s["dice"] for s in out["steps"]] == pytest.approx([0.0, 2 / 3, 1.0])
    assert [s["dmm"] for s in out["steps"]] == pytest.approx([0.0, 2 / 3, 1.0])
    # normalised trapezoid over x = 0, 0.5, 1: ((0 + 2/3) / 2 + (2/3 + 1) / 2) / 2 = 7/12
    assert out["auc_dice"] == pytest.approx(7 / 12) and out["auc_dmm"] == pytest.approx(7 / 12)
    assert out["score"] == pytest.approx(7 / 12)
    empty = np.zeros(SHAPE, bool)
    free = score_scribble_case([L1, empty, empty], empty, (2.0, 2.0, 2.0))  # lesion-free: FPV only
    assert free["auc_dice"] is None and free["score"] is None
    assert free["fpv_auc_ml"] == pytest.approx(((10 * 0.008 + 0) / 2 + 0) / 2)
    s = summarize_v({"a": out, "b": free})
    assert s["auc_dice"] == pytest.approx(7 / 12) and s["n_lesion_free"] == 1
    assert s["fpv_auc_ml"] == pytest.approx((0 + 0.02) / 2)


def test_scribble_loop_fixes_largest_error_first_then_carries():
    big = L1 | _row(1, 2, 0, 9)  # 20 voxels
    ref = big | L2
    p = CubePrompter(ref)
    masks, scribbles = run_scribble_steps(p, np.zeros(SHAPE, bool), ref, (2.0, 2.0, 2.0), case_rng(0, "c"), 4)
    assert [s is None for s in scribbles] == [False, False, True, True]
    assert scribbles[0].positive and scribbles[0].component_voxels == 20 and scribbles[1].component_voxels == 10
    np.testing.assert_array_equal(masks[1], big)
    np.testing.assert_array_equal(masks[2], ref)
    np.testing.assert_array_equal(masks[4], ref)
    assert [e[0] for e in p.log] == ["start", "scribble", "scribble"]


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
def test_protocols_cli_with_real_session(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    inference_data = pytest.importorskip("inference_data")
    from seganypet_nnunet.evaluation.interactive import evaluate_entry

    raw_folder, model = inference_data.setup_model(tmp_path, monkeypatch)
    _write_clicks(raw_folder, tmp_path / "clicks")
    base = ["seganypet_evaluate", "-i", str(raw_folder / "imagesTr"), "-ref", str(raw_folder / "labelsTr")]
    base += ["-m", str(model), "-device", "cpu"]
    monkeypatch.setattr(sys, "argv", [*base, "-o", str(tmp_path / "iv"), "--protocol", "autopet_iv"])
    with pytest.raises(SystemExit, match="-clicks"):
        evaluate_entry()
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
