"""Zero-shot without a dataset: ``seganypet_import_checkpoint --checkpoint FILE -o MODEL_FOLDER`` (a state_dict of
the published keys and shapes, seeded random weights, saved as upstream training saves it) -> a self-contained model
folder that ``seganypet_predict -m --prompts``, ``seganypet_evaluate -m``, ``load_model_folder`` with the commands'
default folds (the napari widget's path) load directly. One small image (smaller than the 128^3 crop at 1.5 mm), so
each command runs the 100M-parameter encoder once.
"""

from __future__ import annotations

import json

import numpy as np
import SimpleITK as sitk
import torch
from bad_files import run_entry
from released_files import upstream_training_checkpoint


def _case(folder, name: str) -> sitk.Image:
    """(z, y, x) 30 x 36 x 40 PET-like image at 3 mm with a hot sphere; its label (1 = the sphere)."""
    z, y, x = np.meshgrid(np.arange(30), np.arange(36), np.arange(40), indexing="ij")
    sphere = (z - 15) ** 2 + (y - 18) ** 2 + (x - 20) ** 2 < 36
    rng = np.random.default_rng(0)
    arr = (1.0 + 0.2 * rng.standard_normal(sphere.shape)).clip(0.1) + 5.0 * sphere
    img = sitk.GetImageFromArray(arr.astype(np.float32))
    img.SetSpacing((3.0, 3.0, 3.0))
    img.SetOrigin((-60.0, -50.0, 100.0))
    (folder / "imagesTs").mkdir(parents=True, exist_ok=True)
    (folder / "labelsTs").mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(img, str(folder / "imagesTs" / f"{name}_0000.nii.gz"))
    label = sitk.GetImageFromArray(sphere.astype(np.uint8))
    label.CopyInformation(img)
    sitk.WriteImage(label, str(folder / "labelsTs" / f"{name}.nii.gz"))
    return img


def test_import_o_then_predict_evaluate_and_default_folds(tmp_path, capsys, monkeypatch):
    from seganypet_nnunet.evaluation.evaluate_cli import evaluate_entry
    from seganypet_nnunet.inference.model_folder import load_model_folder
    from seganypet_nnunet.inference.predict import predict_entry
    from seganypet_nnunet.model.sam_med3d import SamMed3DNet
    from seganypet_nnunet.prompts.prompt_file import SCHEMA
    from seganypet_nnunet.run.import_checkpoint import import_checkpoint_entry

    for var in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"):
        monkeypatch.delenv(var, raising=False)  # no dataset, no nnU-Net folders needed
    monkeypatch.setenv("nnUNet_n_proc_DA", "0")
    torch.manual_seed(0)
    released = upstream_training_checkpoint(tmp_path / "seganypet_v2.pth", SamMed3DNet().state_dict(), True)
    model = tmp_path / "SegAnyPETv2"
    import_checkpoint_entry(["--checkpoint", str(released), "-o", str(model)])
    assert "use it with: -m" in capsys.readouterr().out
    assert sorted(p.name for p in model.iterdir()) == ["dataset.json", "fold_all", "plans.json"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # the temp folder was renamed away
    assert json.loads((model / "dataset.json").read_text())["channel_names"] == {"0": "PET"}
    loaded = load_model_folder(model)  # default folds (0,): the folder's only fold, all
    assert type(loaded.network).__name__ == "SamMed3DNet"

    data = tmp_path / "data"
    _case(data, "case01")
    prompts = {
        "schema": SCHEMA,
        "cases": {"case01": {"targets": [{"name": "hot", "points": [{"coord": [20, 18, 15]}]}]}},
    }
    (tmp_path / "prompts.json").write_text(json.dumps(prompts))
    out = tmp_path / "pred"
    argv = ["-i", data / "imagesTs", "-o", out, "-m", model, "--prompts", tmp_path / "prompts.json", "-device", "cpu"]
    predict_entry([str(a) for a in argv])
    written = sorted(p.name for p in out.iterdir() if p.name.endswith(".nii.gz"))
    assert written == ["case01.nii.gz"]
    assert sitk.GetArrayFromImage(sitk.ReadImage(str(out / "case01.nii.gz"))).shape == (30, 36, 40)

    ev = tmp_path / "eval"
    argv = [
        "-i",
        data / "imagesTs",
        "-ref",
        data / "labelsTs",
        "-o",
        ev,
        "-m",
        model,
        "-n_clicks",
        "1",
        "-device",
        "cpu",
    ]
    evaluate_entry([str(a) for a in argv])
    assert (ev / "summary.json").is_file()

    code, err = run_entry(import_checkpoint_entry, ["--checkpoint", released, "-o", model], capsys)
    assert code == 1 and "exists; pass --overwrite" in err
