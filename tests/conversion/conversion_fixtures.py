"""Tiny on-disk replicas of the source layouts the converters read (real NIfTI/NRRD/MHA files, exact names/nesting).

Arrays are built in numpy (z, y, x) order; SimpleITK geometry is (x, y, z) LPS. Sizes are a few voxels per axis.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import numpy as np
import SimpleITK as sitk

SHAPE_ZYX = (6, 9, 11)
#: A rotated (non-identity, non-axis-aligned) direction: 20 degrees about z, columns = axis cosines.
_C, _S = math.cos(math.radians(20)), math.sin(math.radians(20))
OBLIQUE = (_C, -_S, 0.0, _S, _C, 0.0, 0.0, 0.0, 1.0)
IDENTITY = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)


def image(arr: np.ndarray, spacing=(2.0, 2.0, 3.0), origin=(-10.0, 5.0, 30.0), direction=IDENTITY) -> sitk.Image:
    """SimpleITK image from a (z, y, x) array with the given (x, y, z) geometry."""
    img = sitk.GetImageFromArray(arr)
    img.SetSpacing(spacing)
    img.SetOrigin(origin)
    img.SetDirection(direction)
    return img


def pet_ct_label(
    seed: int, shape=SHAPE_ZYX, n_labels: int = 1, **geometry
) -> tuple[sitk.Image, sitk.Image, sitk.Image]:
    """(SUV float32, CT int16 HU, label uint8 with values 0..n_labels) on one grid; a hot blob per label value."""
    rng = np.random.default_rng(seed)
    pet = rng.gamma(4.0, 0.25, size=shape).astype(np.float32)
    ct = rng.integers(-200, 200, size=shape).astype(np.int16)
    label = np.zeros(shape, np.uint8)
    for value in range(1, n_labels + 1):
        z, y, x = (int(rng.integers(1, s - 2)) for s in shape)
        label[z : z + 2, y : y + 2, x : x + 2] = value
    pet[label > 0] += 8.0
    return image(pet, **geometry), image(ct, **geometry), image(label, **geometry)


def write(img: sitk.Image, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(img, str(path), useCompression=True)
    return path


def tree_hash(root: Path) -> dict[str, str]:
    """Relative path → sha256 of every file under ``root`` (to prove a source was not touched)."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


# --------------------------------------------------------------------------------------------------- autoPET FDG
AUTOPET_STUDIES = {  # patient -> study folder names (as in the release, incl. spaces and the "nativ u. mit" dot)
    "PETCT_0af7ffe12a": [
        "06-29-2003-NA-PET-CT Ganzkoerper  primaer mit KM-10445",
        "08-12-2004-NA-PET-CT Ganzkoerper  primaer mit KM-46120",
    ],
    "PETCT_1b2c3d4e5f": ["03-05-2005-NA-PET-CT Ganzkoerper nativ u. mit KM-90211"],
    "PETCT_2c3d4e5f6a": ["11-30-2001-NA-PET-CT Ganzkoerper  primaer mit KM-13579"],
}  # fmt: skip


def make_autopet_fdg(root: Path, n_labels: int = 1) -> dict[str, Path]:
    """Write ``root/PETCT_*/<study>/{SUV,CTres,SEG,CT,PET}.nii.gz``; one patient has an oblique direction."""
    studies = {}
    for p_idx, (patient, names) in enumerate(AUTOPET_STUDIES.items()):
        geometry = {"direction": OBLIQUE} if p_idx == 1 else {}
        for s_idx, name in enumerate(names):
            pet, ct, label = pet_ct_label(10 * p_idx + s_idx, n_labels=n_labels, **geometry)
            folder = root / patient / name
            write(pet, folder / "SUV.nii.gz")
            write(sitk.Cast(pet * 5000.0, sitk.sitkFloat32), folder / "PET.nii.gz")
            write(ct, folder / "CTres.nii.gz")
            write(label, folder / "SEG.nii.gz")
            studies[f"{patient}/{name}"] = folder
    return studies


# --------------------------------------------------------------------------------------------------- autoPET IV
AUTOPET_IV_CASES = ["fdg_0b98dbe00d_2003-02-19", "fdg_0b98dbe00d_2005-08-13", "psma_95b833d46f153cd2_2018-04-16"]


def make_autopet_iv(root: Path) -> list[str]:
    """Write the autoPET III/IV nnU-Net layout (CT _0000, PET _0001) plus a click folder in both JSON forms."""
    for idx, case in enumerate(AUTOPET_IV_CASES):
        geometry = {"direction": OBLIQUE} if case.startswith("psma") else {}
        pet, ct, label = pet_ct_label(100 + idx, **geometry)
        write(ct, root / "imagesTr" / f"{case}_0000.nii.gz")
        write(pet, root / "imagesTr" / f"{case}_0001.nii.gz")
        write(label, root / "labelsTr" / f"{case}.nii.gz")
    clicks = root / "clicks"
    clicks.mkdir()
    (clicks / f"{AUTOPET_IV_CASES[0]}.json").write_text(
        json.dumps({"tumor": [[1, 2, 3], [10, 8, 5]], "background": [[0, 0, 0]]})
    )
    points = [{"point": [4, 5, 2], "name": "tumor"}, {"point": [9, 1, 1], "name": "background"}]
    gc_form = {"version": {"major": 1, "minor": 0}, "type": "Multiple points", "points": points}
    (clicks / f"{AUTOPET_IV_CASES[2]}_clicks.json").write_text(json.dumps(gc_form))
    return AUTOPET_IV_CASES


# ------------------------------------------------------------------------------------------------ AutoPET-Organ
def make_autopet_organ(label_dir: Path, autopet_root: Path) -> list[Path]:
    """AutoPET-Organ label files ``<PETCT_id>_<study>_.nii.gz`` (values 0..12, 12 = alias of 11) for every study."""
    make_autopet_fdg(autopet_root)
    files = []
    for idx, (patient, names) in enumerate(AUTOPET_STUDIES.items()):
        for name in names:
            suv = sitk.ReadImage(str(autopet_root / patient / name / "SUV.nii.gz"))
            arr = (np.arange(np.prod(SHAPE_ZYX)).reshape(SHAPE_ZYX) % (13 if idx == 0 else 12)).astype(np.uint8)
            label = sitk.GetImageFromArray(arr)
            label.CopyInformation(suv)
            files.append(write(label, label_dir / f"{patient}_{name}_.nii.gz"))
    return files


# ------------------------------------------------------------------------------------------------------ HECKTOR
def make_hecktor(root: Path, layout: str = "2022") -> list[str]:
    """HECKTOR cases: CT + label on a fine grid, PT on a coarser, shifted grid (resampling needed)."""
    cases = ["CHUM-001", "CHUP-012"]
    for idx, case in enumerate(cases):
        direction = OBLIQUE if idx == 1 else IDENTITY
        _, ct, label = pet_ct_label(200 + idx, shape=(8, 12, 12), n_labels=2, spacing=(1.0, 1.0, 1.5),
                                    origin=(0.0, 0.0, 0.0), direction=direction)  # fmt: skip
        pet_arr = np.fromfunction(lambda z, y, x: 1.0 + 0.5 * x + 0.25 * y + z, (6, 8, 8), dtype=np.float32)
        pet = image(pet_arr.astype(np.float32), spacing=(2.0, 2.0, 2.5), origin=(-3.0, -2.0, -2.0), direction=direction)
        folder = root / "imagesTr" if layout == "2022" else root / case
        write(ct, folder / f"{case}__CT.nii.gz")
        write(pet, folder / f"{case}__PT.nii.gz")
        label_path = (
            root / "labelsTr" / f"{case.replace('-', '_')}.nii.gz" if layout == "2022" else folder / f"{case}.nii.gz"
        )
        write(label, label_path)
    return cases


# ------------------------------------------------------------------------------------------------------ generic
def make_generic(root: Path) -> dict[str, int]:
    """``<case>_pet.nrrd``, ``<case>_ct.mha``, ``<case>_seg.nii.gz`` + ``labels.json`` (2 classes)."""
    labels = {"background": 0, "lesion": 1, "liver": 2}
    for idx, case in enumerate(["pat01_scan1", "pat01_scan2", "pat02_scan1"]):
        pet, ct, label = pet_ct_label(300 + idx, n_labels=2, direction=OBLIQUE if idx == 2 else IDENTITY)
        write(pet, root / "data" / f"{case}_pet.nrrd")
        write(ct, root / "data" / f"{case}_ct.mha")
        write(label, root / "data" / f"{case}_seg.nii.gz")
    (root / "labels.json").write_text(json.dumps(labels))
    (root / "c2p.json").write_text(json.dumps({"pat01_scan1": "pat01", "pat01_scan2": "pat01", "pat02_scan1": "pat02"}))
    return labels
