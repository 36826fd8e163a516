"""Tiny nnU-Net raw datasets with anisotropic spacing and a rotated direction, plus untrained model folders.

Used by tests/inference (coordinates, session, predict); no mocks: real SimpleITK files, real nnU-Net fingerprinting and
planning with SegAnyPETPlannerTiny, real torch networks built from the plans.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import SimpleITK as sitk

# 30 degrees about the ITK z axis: a non-identity direction matrix.
_C, _S = np.cos(np.pi / 6), np.sin(np.pi / 6)
DIRECTION = (_C, -_S, 0.0, _S, _C, 0.0, 0.0, 0.0, 1.0)
SPACING = (3.0, 2.0, 2.0)  # ITK (x, y, z): largest spacing on x -> nnU-Net transposes (array axis 2 first)
SIZE = (24, 36, 40)  # ITK (i, j, k)


def make_image(seed: int, size=SIZE, spacing=SPACING, direction=DIRECTION, origin=(-40.0, 10.0, 5.0)):
    """(pet sitk.Image, label sitk.Image): zero border (crop-to-non-zero matters), a hot blob = label 1."""
    rng = np.random.default_rng(seed)
    arr = np.zeros(size[::-1], np.float32)  # (z, y, x)
    arr[3:-2, 2:-3, 2:-2] = 1.0 + 0.1 * rng.random((size[2] - 5, size[1] - 5, size[0] - 4))
    zz, yy, xx = np.meshgrid(*[np.arange(n) for n in arr.shape], indexing="ij")
    c = np.array([size[2] // 2, size[1] // 2, size[0] // 2]) + rng.integers(-3, 4, 3)
    blob = ((zz - c[0]) ** 2 + (yy - c[1]) ** 2 + (xx - c[2]) ** 2) < 25
    arr[blob] += 6.0
    images = []
    for a in (arr, blob.astype(np.uint8)):
        img = sitk.GetImageFromArray(a)
        img.SetSpacing(spacing)
        img.SetDirection(direction)
        img.SetOrigin(origin)
        images.append(img)
    return images[0], images[1]


def write_raw_dataset(raw: Path, dataset_id: int = 990, n_cases: int = 2) -> Path:
    """``raw/DatasetXXX_InfTest`` with imagesTr/labelsTr/imagesTs and dataset.json (one PET channel)."""
    folder = raw / f"Dataset{dataset_id:03d}_InfTest"
    for sub in ("imagesTr", "labelsTr", "imagesTs"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    for i in range(n_cases):
        pet, lab = make_image(i)
        sitk.WriteImage(pet, str(folder / "imagesTr" / f"case{i:02d}_0000.nii.gz"))
        sitk.WriteImage(lab, str(folder / "labelsTr" / f"case{i:02d}.nii.gz"))
    for i in range(2):
        pet, _ = make_image(100 + i, spacing=(2.5, 1.7, 2.2))
        sitk.WriteImage(pet, str(folder / "imagesTs" / f"test{i:02d}_0000.nii.gz"))
    (folder / "dataset.json").write_text(
        json.dumps(
            {
                "channel_names": {"0": "PET"},
                "labels": {"background": 0, "lesion": 1},
                "numTraining": n_cases,
                "file_ending": ".nii.gz",
            }
        )
    )
    return folder


def setup_model(root: Path, monkeypatch, dataset_id: int = 990, folds=(0,)) -> tuple[Path, Path]:
    """Set nnU-Net env vars under ``root``, write the dataset, plan it (Tiny) and write an untrained model folder.

    Returns (raw dataset folder, model folder in nnU-Net's results layout).
    """
    from seganypet_nnunet.inference.model_folder import plan_and_write_untrained
    from seganypet_nnunet.planners import SegAnyPETPlannerTiny

    for name in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"):
        (root / name).mkdir(parents=True, exist_ok=True)
        monkeypatch.setenv(name, str(root / name))
    monkeypatch.setenv("nnUNet_def_n_proc", "1")
    raw = write_raw_dataset(root / "nnUNet_raw", dataset_id)
    model = root / "nnUNet_results" / raw.name / "SegAnyPETTrainer__SegAnyPETPlansTiny__3d_fullres"
    plan_and_write_untrained(dataset_id, SegAnyPETPlannerTiny, "3d_fullres", model, folds)
    return raw, model


_SHARED: dict = {}


def shared_model(tmp_path_factory, mp) -> tuple[Path, Path]:
    """``setup_model`` once per pytest process (planning costs ~15 s); env vars are set again on each call.

    The model folder is made read-only: tests share it, never a session or anything else they could mutate
    (each test builds its own ``SegAnyPETSession`` from it, see ``new_session``).
    """
    if "root" not in _SHARED:
        _SHARED["root"] = tmp_path_factory.mktemp("inference_model")
        _SHARED["paths"] = setup_model(_SHARED["root"], mp)
        for f in _SHARED["paths"][1].rglob("*"):
            if f.is_file():
                f.chmod(0o444)
    for name in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"):
        mp.setenv(name, str(_SHARED["root"] / name))
    mp.setenv("nnUNet_def_n_proc", "1")
    return _SHARED["paths"]


def new_session(model_folder: Path, image: Path | None = None, **kwargs):
    """A fresh ``SegAnyPETSession`` of its own for one test (optionally with ``image`` set)."""
    from seganypet_nnunet.inference.session import SegAnyPETSession

    session = SegAnyPETSession.from_model_folder(model_folder, folds=(0,), **kwargs)
    if image is not None:
        session.set_image(str(image))
    return session
