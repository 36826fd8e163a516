"""Packaged models: exported weights-only from a trained folder, resolved by name, loaded by name everywhere."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from seganypet_nnunet.errors import InputNotFoundError, SeganypetError
from seganypet_nnunet.pretrained import (
    MAX_WEIGHTS_MB,
    REFERENCE_MODEL,
    export_packaged_model,
    packaged_models,
    resolve_model,
)


def test_export_keeps_weights_only_and_resolves_by_name(tmp_path: Path, monkeypatch):
    inference_data = pytest.importorskip("inference_data")
    _, model = inference_data.setup_model(tmp_path, monkeypatch)
    ckpt_path = model / "fold_0" / "checkpoint_final.pth"
    ckpt = torch.load(ckpt_path, weights_only=False)
    ckpt["optimizer_state"] = {"state": {0: {"exp_avg": torch.zeros(1000)}}}
    torch.save(ckpt, ckpt_path)
    root = tmp_path / "packaged"
    root.mkdir()
    generator = {"preset": "adult", "tracer": "fdg", "spacing_mm": [4.0, 4.0, 4.0]}
    out = export_packaged_model(model, "my_model", "# card\n", generator=generator, root=root)
    assert out == root / "my_model" and sorted(p.name for p in out.iterdir()) == [
        "MODEL_CARD.md", "dataset.json", "fold_0", "generator.json", "plans.json"
    ]  # fmt: skip
    slim = torch.load(out / "fold_0" / "checkpoint_final.pth", weights_only=True)
    assert "optimizer_state" not in slim and set(slim["network_weights"]) == set(ckpt["network_weights"])
    for k, v in ckpt["network_weights"].items():
        assert torch.equal(slim["network_weights"][k], v)
    assert not [p for p in root.iterdir() if p.name.startswith(".")]  # no temp folder left
    assert packaged_models(root) == {"my_model": out}
    assert resolve_model("my_model", root) == out
    assert resolve_model(model, root) == model  # a path stays a path
    with pytest.raises(InputNotFoundError, match="not a packaged model \\(my_model\\)"):
        resolve_model("no_such_model", root)
    with pytest.raises(SeganypetError, match="name"):
        export_packaged_model(model, "../escape", "", root=root)


def test_export_refuses_weights_over_the_limit(tmp_path: Path, monkeypatch):
    inference_data = pytest.importorskip("inference_data")
    _, model = inference_data.setup_model(tmp_path, monkeypatch)
    ckpt_path = model / "fold_0" / "checkpoint_final.pth"
    ckpt = torch.load(ckpt_path, weights_only=False)
    ckpt["network_weights"]["padding"] = torch.zeros(int(MAX_WEIGHTS_MB * 1e6 / 4) + 1000)
    torch.save(ckpt, ckpt_path)
    root = tmp_path / "packaged"
    root.mkdir()
    with pytest.raises(SeganypetError, match="MB"):
        export_packaged_model(model, "too_big", "", root=root)
    assert not list(root.iterdir())


def test_the_reference_model_ships_with_its_card_and_weights_within_the_limit():
    folder = packaged_models()[REFERENCE_MODEL]
    card = (folder / "MODEL_CARD.md").read_text()
    for heading in ("Training data", "Budget", "Figures", "Intended use"):
        assert heading in card, heading
    assert "not for clinical use" in card
    assert (folder / "fold_0" / "checkpoint_final.pth").stat().st_size <= MAX_WEIGHTS_MB * 1e6


def test_the_reference_model_loads_by_name_in_session_predict_and_evaluate(tmp_path: Path):
    """Three of the four places (napari's picker: tests/napari_plugin/test_widget.py)."""
    import numpy as np
    import SimpleITK as sitk

    from seganypet_nnunet.inference.session import SegAnyPETSession
    from seganypet_nnunet.synthetic import SyntheticConfig, make_dataset
    from seganypet_nnunet.synthetic.config import PRESETS

    session = SegAnyPETSession.from_model_folder(REFERENCE_MODEL)
    raw = make_dataset(
        970, "ByName", 1, 1, SyntheticConfig(**PRESETS["adult"], spacing=(8.0, 8.0, 8.0)), seed=3, raw_root=tmp_path
    )
    (image,) = sorted((raw / "imagesTs").iterdir())
    session.set_image(str(image))
    pet = sitk.GetArrayFromImage(sitk.ReadImage(str(image)))  # (z, y, x)
    hottest_zyx = np.unravel_index(np.argmax(pet), pet.shape)
    mask = session.add_point([int(i) for i in reversed(hottest_zyx)], positive=True, space="voxel")  # (i, j, k)
    assert mask.shape == pet.shape and mask[hottest_zyx]
    bin_dir = Path(sys.executable).parent
    single = tmp_path / "single"
    single.mkdir()
    (single / image.name).symlink_to(image)
    res = subprocess.run(
        [str(bin_dir / "seganypet_predict"), "-i", str(single), "-o", str(tmp_path / "pred"), "-m", REFERENCE_MODEL,
         "-f", "0", "-device", "cpu", "-npp", "0", "-nps", "0", "--disable_tta"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-2000:]
    assert len(list((tmp_path / "pred").glob("*.nii.gz"))) == 1
    res = subprocess.run(
        [str(bin_dir / "seganypet_evaluate"), "-m", REFERENCE_MODEL, "-i", str(single), "-ref", str(raw / "labelsTs"),
         "-o", str(tmp_path / "eval"), "-f", "0", "-device", "cpu", "-n_clicks", "1", "-targets", "liver"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-2000:]
    assert (tmp_path / "eval" / "summary.json").is_file()
