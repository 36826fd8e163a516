"""Reading a PET image for the viewer (a file, or a DICOM series converted to SUV) and saving the label map.

Everything here is GUI-free: the widget calls it from a worker thread. Errors are ``SeganypetError`` (one line).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import SimpleITK as sitk

from seganypet_nnunet import io_utils
from seganypet_nnunet.errors import InputNotFoundError, SeganypetError, one_line

#: PET window presets: name -> (low, high) SUV (readers' usual ranges; "min-max" uses the image's range).
WINDOW_PRESETS: dict[str, tuple[float, float] | None] = {
    "SUV 0-5": (0.0, 5.0),
    "SUV 0-10": (0.0, 10.0),
    "SUV 0-20": (0.0, 20.0),
    "min-max": None,
}
#: File endings the viewer opens as one image (anything else must be a DICOM series folder).
IMAGE_ENDINGS = (".nii.gz", ".nii", ".mha", ".mhd", ".nrrd", ".nhdr")


def read_pet(path: str | Path) -> tuple[sitk.Image, str]:
    """PET image as float32 SimpleITK image plus a short description of its source.

    Args:
        path: an image file (NIfTI, MHA/MHD, NRRD), or a folder holding ONE PET DICOM series, which is converted to
            SUVbw with ``dataset_conversion.dicom_to_suv.load_suv_series`` (the image then holds SUV).
    Raises:
        SeganypetError: missing, unreadable or non-3D input (one-line message).
    """
    path = Path(path)
    if not path.exists():
        raise InputNotFoundError(f"{path}: no such file or folder")
    if path.is_dir():
        from seganypet_nnunet.dataset_conversion.dicom_to_suv import load_suv_series

        try:
            image, info = load_suv_series(path)
        except (ValueError, OSError, RuntimeError, KeyError) as err:
            raise SeganypetError(f"{path}: not a readable PET DICOM series ({one_line(err)})") from None
        return image, f"DICOM series as SUV (factor {float(info['factor']):.4g})"
    if not path.name.lower().endswith(IMAGE_ENDINGS):
        raise SeganypetError(f"{path}: unsupported file type; open {', '.join(IMAGE_ENDINGS)} or a DICOM folder")
    try:
        image = sitk.ReadImage(str(path))
    except RuntimeError as err:
        raise SeganypetError(f"{path}: cannot read the image ({one_line(err)[:200]})") from None
    if image.GetDimension() != 3 or image.GetNumberOfComponentsPerPixel() != 1:
        raise SeganypetError(f"{path}: expected a 3D single-channel PET image, got {image.GetDimension()}D")
    return sitk.Cast(image, sitk.sitkFloat32), path.name


def window(preset: str, array_zyx: np.ndarray) -> tuple[float, float]:
    """Contrast limits (low, high) of ``preset`` (``WINDOW_PRESETS``) for an image array."""
    if preset not in WINDOW_PRESETS:
        raise SeganypetError(f"window preset {preset!r} unknown; choose one of {list(WINDOW_PRESETS)}")
    limits = WINDOW_PRESETS[preset]
    if limits is not None:
        return limits
    lo, hi = float(np.min(array_zyx)), float(np.max(array_zyx))
    return (lo, hi if hi > lo else lo + 1.0)


def label_json_path(label_path: str | Path) -> Path:
    """``labels.nii.gz`` -> ``labels.json``: where the target names of a saved label map go."""
    label_path = Path(label_path)
    name = label_path.name
    for ending in IMAGE_ENDINGS:
        if name.lower().endswith(ending):
            return label_path.with_name(name[: -len(ending)] + ".json")
    return label_path.with_name(name + ".json")


def save_label_map(session, path: str | Path) -> tuple[Path, Path]:
    """Write ``session.label_map()`` with the image's exact geometry and its names JSON (``{"labels": {id: name}}``,
    the format ``seganypet_predict --prompts`` writes); returns (label file, JSON file)."""
    path = Path(path)
    if not path.name.lower().endswith(IMAGE_ENDINGS):
        raise SeganypetError(f"{path}: save the label map as one of {', '.join(IMAGE_ENDINGS)}")
    if not path.parent.is_dir():
        raise InputNotFoundError(f"{path.parent}: output folder not found")
    labels, names = session.label_map()
    image_path = io_utils.write_image(session.to_image(labels), path)
    json_path = io_utils.write_json({"labels": {str(k): v for k, v in names.items()}}, label_json_path(path))
    return image_path, json_path
