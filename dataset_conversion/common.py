"""Shared pieces of the dataset converters: one function per job.

Geometry is always compared in physical space (origin, spacing, direction; LPS world mm as SimpleITK reports them)
with a tolerance, never by array index or an assumed orientation. Images are SimpleITK images, so sizes and spacings
below are in ITK index order (x, y, z); numpy arrays from ``sitk.GetArrayFromImage`` are in (z, y, x) order.

Every output goes through ``seganypet_nnunet.io_utils`` (temp file then rename) and is skipped when an identical file is
already there, so converters can be re-run safely. Sources are only ever read.
"""

from __future__ import annotations

import filecmp
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from seganypet_nnunet.image_files import read_image_header
from seganypet_nnunet.io_utils import copy_file, write_image, write_json
from seganypet_nnunet.paths import dataset_folder_name, nnunet_folder
from seganypet_nnunet.splits import CASE_TO_PATIENT, SPLITS_FILE, write_patient_splits

#: Channel names → normalisation they trigger; quoted in every converter's ``--help``.
CHANNEL_HELP = (
    "Channels: _0000 = PET in SUV, channel name 'PET' (our SegAnyPETPlanner plans NoNormalization and the network "
    "applies log1p(max(SUV,0)); stock nnU-Net would use per-case z-score for this name); _0001 = CT in HU, channel "
    "name 'CT' (CTNormalization: dataset-wide foreground 0.5/99.5 percentile clip + global z-score)."
)
#: Physical-space tolerances: origin in mm, spacing relative, direction cosines absolute.
ORIGIN_TOL_MM = 1e-3
SPACING_RTOL = 1e-4
DIRECTION_TOL = 1e-4
IMAGE_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".mha", ".mhd")


class ConversionError(ValueError):
    """A bad input; the message is one line naming the file/case and the problem."""


# ----------------------------------------------------------------------------------------------------------- reading
def read_image_info(path: Path) -> sitk.ImageFileReader:
    """Read only the header of ``path`` (cheap); raise ConversionError if unreadable or not 3D."""
    return read_image_header(path, ConversionError)


def read_image(path: Path) -> sitk.Image:
    """Read a 3D scalar image (any SimpleITK format); raise ConversionError if unreadable or not 3D."""
    read_image_info(path)
    try:
        return sitk.ReadImage(str(path))
    except RuntimeError as err:
        raise ConversionError(f"{path}: unreadable image ({str(err).strip().splitlines()[-1][:120]})") from None


def strip_image_suffix(name: str) -> str | None:
    """``'x_pet.nii.gz'`` → ``'x_pet'``; None if the name has no supported image suffix."""
    for suffix in IMAGE_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return None


def sanitize_case_part(text: str) -> str:
    """Make a folder name usable in an nnU-Net case id: dots removed, other non ``[A-Za-z0-9-]`` runs become ``_``."""
    return re.sub(r"_+", "_", re.sub(r"[^A-Za-z0-9-]", "_", text.replace(".", ""))).strip("_")


def require_cases(cases: Mapping, source_dir: Path, what: str) -> None:
    """Raise if nothing was found in ``source_dir``."""
    if not cases:
        raise ConversionError(f"{source_dir}: no {what} found (empty or wrong source folder?)")


def check_unique(case_ids: Iterable[str], origins: Iterable[object]) -> None:
    """Raise ConversionError naming both sources if two inputs map onto the same case id."""
    seen: dict[str, object] = {}
    for case_id, origin in zip(case_ids, origins, strict=True):
        if case_id in seen:
            raise ConversionError(f"duplicate case id {case_id!r}: from {seen[case_id]} and {origin}")
        seen[case_id] = origin


# ---------------------------------------------------------------------------------------------------------- geometry
def _geometry(img: sitk.Image | sitk.ImageFileReader) -> tuple:
    return tuple(img.GetSize()), np.array(img.GetSpacing()), np.array(img.GetOrigin()), np.array(img.GetDirection())


def geometry_difference(a: sitk.Image | sitk.ImageFileReader, b: sitk.Image | sitk.ImageFileReader) -> str | None:
    """Describe how the grids of ``a`` and ``b`` differ in physical space, or None if they match within tolerance.

    Compares size (x, y, z), spacing (relative), origin (mm, LPS) and the direction cosine matrix.
    """
    size_a, sp_a, or_a, dir_a = _geometry(a)
    size_b, sp_b, or_b, dir_b = _geometry(b)
    if size_a != size_b:
        return f"size {size_a} vs {size_b}"
    if not np.allclose(sp_a, sp_b, rtol=SPACING_RTOL, atol=0):
        return f"spacing {tuple(np.round(sp_a, 5))} vs {tuple(np.round(sp_b, 5))}"
    if not np.allclose(dir_a, dir_b, atol=DIRECTION_TOL, rtol=0):
        return f"direction {tuple(np.round(dir_a, 4))} vs {tuple(np.round(dir_b, 4))}"
    if not np.allclose(or_a, or_b, atol=ORIGIN_TOL_MM, rtol=0):
        return f"origin {tuple(np.round(or_a, 3))} vs {tuple(np.round(or_b, 3))} mm"
    return None


def check_same_grid(reference: sitk.Image | sitk.ImageFileReader, other, ref_path: Path, other_path: Path) -> None:
    """Raise ConversionError naming both files if ``other`` is not on the grid of ``reference``."""
    diff = geometry_difference(reference, other)
    if diff is not None:
        raise ConversionError(f"{other_path}: grid differs from {Path(ref_path).name} ({diff})")


def resample_to_reference(
    image: sitk.Image, reference: sitk.Image, linear: bool = True, default_value: float = 0.0
) -> sitk.Image:
    """Resample ``image`` onto the grid of ``reference`` by physical coordinates (identity transform in world LPS mm).

    Args:
        image: moving image, any grid.
        reference: defines the output size/spacing/origin/direction.
        linear: linear interpolation (intensities) or nearest neighbour (labels).
        default_value: value outside the moving image's field of view (e.g. 0 SUV, -1024 HU).
    Returns:
        float32 image (linear) or the input pixel type (nearest) on the reference grid.
    """
    interpolator = sitk.sitkLinear if linear else sitk.sitkNearestNeighbor
    pixel_type = sitk.sitkFloat32 if linear else image.GetPixelID()
    moving = sitk.Cast(image, sitk.sitkFloat32) if linear else image
    return sitk.Resample(moving, reference, sitk.Transform(), interpolator, float(default_value), pixel_type)


# ------------------------------------------------------------------------------------------------------------ labels
def label_image_checked(label: sitk.Image, allowed: Iterable[int], path: Path, remap: Mapping[int, int] | None = None):
    """Return ``label`` as uint8 after checking its values are in ``allowed`` (after ``remap``); geometry kept.

    Raises ConversionError listing the unexpected values and the file.
    """
    arr = sitk.GetArrayFromImage(label)
    if not np.all(np.isfinite(arr)) or not np.all(np.equal(np.mod(arr, 1), 0)):
        raise ConversionError(f"{path}: label image holds non-integer values")
    arr = arr.astype(np.int64)
    for src, dst in (remap or {}).items():
        arr[arr == src] = dst
    bad = sorted(set(np.unique(arr).tolist()) - set(int(v) for v in allowed))
    if bad:
        raise ConversionError(f"{path}: label values {bad[:10]} are not in the label map {sorted(set(allowed))}")
    out = sitk.GetImageFromArray(arr.astype(np.uint8))
    out.CopyInformation(label)
    return out


def load_label_map(path: Path) -> dict[str, int]:
    """Read a label-name map JSON in nnU-Net's form ``{"background": 0, "lesion": 1, ...}`` and validate it."""
    import json

    try:
        labels = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ConversionError(f"{path}: unreadable label map JSON ({err})") from None
    if not isinstance(labels, dict) or not all(isinstance(v, int) and not isinstance(v, bool) for v in labels.values()):
        raise ConversionError(f"{path}: label map must be an object name -> integer value")
    values = sorted(labels.values())
    if values != list(range(len(values))) or labels.get("background") != 0:
        raise ConversionError(f"{path}: label values must be consecutive from 0 with 'background': 0, got {values}")
    return labels


# ----------------------------------------------------------------------------------------------- idempotent outputs
def images_identical(a: sitk.Image, b: sitk.Image) -> bool:
    """Same pixel type, same grid within tolerance and identical voxel values."""
    if a.GetPixelID() != b.GetPixelID() or geometry_difference(a, b) is not None:
        return False
    return bool(np.array_equal(sitk.GetArrayViewFromImage(a), sitk.GetArrayViewFromImage(b)))


def put_image(image: sitk.Image, target: Path) -> bool:
    """Write ``image`` atomically unless ``target`` already holds an identical image; return True if written."""
    target = Path(target)
    if target.is_file():
        try:
            if images_identical(sitk.ReadImage(str(target)), image):
                return False
        except RuntimeError:
            pass  # a broken previous output is simply replaced
    write_image(image, target)
    return True


def put_copy(source: Path, target: Path) -> bool:
    """Copy ``source`` atomically unless ``target`` has identical bytes; return True if copied."""
    if Path(target).is_file() and filecmp.cmp(source, target, shallow=False):
        return False
    copy_file(source, target)
    return True


def put_json(obj, target: Path) -> bool:
    """Write JSON atomically unless ``target`` already holds the same content; return True if written."""
    import json

    target = Path(target)
    if target.is_file():
        try:
            if json.loads(target.read_text()) == json.loads(json.dumps(obj)):
                return False
        except (OSError, json.JSONDecodeError):
            pass
    write_json(obj, target)
    return True


def image_to_channel(source: Path, target: Path) -> bool:
    """Put a source image as an nnU-Net channel: byte copy for ``.nii.gz`` sources, re-encode otherwise."""
    if str(source).lower().endswith(".nii.gz"):
        return put_copy(source, target)
    return put_image(read_image(source), target)


# --------------------------------------------------------------------------------------------------- dataset files
def raw_root(output_root: Path | None) -> Path:
    """The nnU-Net raw root: ``output_root`` if given (the CLI's ``-o``), else ``$nnUNet_raw``."""
    return Path(output_root) if output_root is not None else nnunet_folder("nnUNet_raw")


def dataset_dirs(dataset_id: int, name: str, output_root: Path | None) -> tuple[Path, Path, Path]:
    """Create and return ``(dataset_folder, imagesTr, labelsTr)`` under the raw root."""
    folder = raw_root(output_root) / dataset_folder_name(dataset_id, name)
    (folder / "imagesTr").mkdir(parents=True, exist_ok=True)
    (folder / "labelsTr").mkdir(parents=True, exist_ok=True)
    return folder, folder / "imagesTr", folder / "labelsTr"


def write_dataset_json(
    folder: Path, channel_names: Mapping[int, str], labels: Mapping[str, int], num_training: int, **extra
) -> Path:
    """Write nnU-Net's ``dataset.json`` (SimpleITKIO, ``.nii.gz``) with any extra documentation keys."""
    content = {
        "channel_names": {str(k): v for k, v in channel_names.items()},
        "labels": dict(labels),
        "numTraining": int(num_training),
        "file_ending": ".nii.gz",
        "overwrite_image_reader_writer": "SimpleITKIO",
        **extra,
    }
    put_json(content, folder / "dataset.json")
    return folder / "dataset.json"


def write_splits(folder: Path, case_to_patient: Mapping[str, str], n_folds: int = 5) -> list[Path]:
    """Write ``case_to_patient.json`` and ``splits_final.json`` (grouped by patient) into the raw dataset folder.

    If ``$nnUNet_preprocessed`` is set, ``splits_final.json`` is also written to
    ``$nnUNet_preprocessed/<DatasetXXX_Name>/`` where nnU-Net's trainer reads it (nnU-Net's planning keeps that file).
    With fewer than 2 patients no splits are written (nnU-Net then makes its own).
    """
    written = [folder / CASE_TO_PATIENT]
    put_json(dict(sorted(case_to_patient.items())), written[0])
    targets = [folder / SPLITS_FILE]
    if os.environ.get("nnUNet_preprocessed"):
        targets.append(nnunet_folder("nnUNet_preprocessed") / folder.name / SPLITS_FILE)
    return written + write_patient_splits(case_to_patient, sorted(case_to_patient), targets, n_splits=n_folds)


def add_common_arguments(parser, default_id: int) -> None:
    """The flags every converter shares (nnU-Net grammar)."""
    parser.add_argument(
        "-d", type=int, default=default_id, help=f"[OPTIONAL] nnU-Net dataset id. Default: {default_id}"
    )
    parser.add_argument(
        "-o", type=Path, default=None, help="[OPTIONAL] nnU-Net raw root to write into. Default: $nnUNet_raw"
    )


def run_cli(function, *args, **kwargs):
    """Call a converter from a ``*_entry``; a ConversionError becomes a one-line ``error: ...`` exit (status 1)."""
    try:
        result = function(*args, **kwargs)
    except ConversionError as err:
        raise SystemExit(f"error: {err}") from None
    print(result)
    return result
