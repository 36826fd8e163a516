"""Shared pieces of the dataset converters: one function per job.

Geometry is always compared in physical space (origin, spacing, direction; LPS world mm as SimpleITK reports them)
with a tolerance, never by array index or an assumed orientation. Images are SimpleITK images, so sizes and spacings
below are in ITK index order (x, y, z); numpy arrays from ``sitk.GetArrayFromImage`` are in (z, y, x) order.

Every output goes through ``seganypet_nnunet.io_utils`` (temp file then rename) and is skipped when an identical file is
already there, so converters can be re-run safely. Sources are only ever read.
"""

from __future__ import annotations

import contextlib
import filecmp
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import NamedTuple

import numpy as np
import SimpleITK as sitk

from seganypet_nnunet import validation
from seganypet_nnunet.errors import SeganypetError, reraise_as
from seganypet_nnunet.io_utils import TMP_DIR, copy_file, remove_stale, temp_prefix, write_image, write_json
from seganypet_nnunet.paths import dataset_folder_name, nnunet_folder
from seganypet_nnunet.splits import CASE_TO_PATIENT, SPLITS_FILE, write_patient_splits
from seganypet_nnunet.validation import geometry_difference  # noqa: F401  (re-exported: converters and tests use it)

#: Channel names → normalisation they trigger; quoted in every converter's ``--help``.
CHANNEL_HELP = (
    "Channels: _0000 = PET in SUV, channel name 'PET' (our SegAnyPETPlanner plans NoNormalization and the network "
    "applies log1p(max(SUV,0)); stock nnU-Net would use per-case z-score for this name); _0001 = CT in HU, channel "
    "name 'CT' (CTNormalization: dataset-wide foreground 0.5/99.5 percentile clip + global z-score)."
)
IMAGE_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".mha", ".mhd")


class ConversionError(SeganypetError):
    """A bad input; the message is one line naming the file/case and the problem."""


# ----------------------------------------------------------------------------------------------------------- reading
def read_image_info(path: Path) -> sitk.ImageFileReader:
    """Read only the header of ``path`` (cheap); ConversionError if missing, empty, truncated, unreadable or not 3D."""
    with reraise_as(ConversionError):
        return validation.read_header(path)


def read_image(path: Path, require_signal: bool = False) -> sitk.Image:
    """Read a 3D scalar image (any SimpleITK format) after ``read_image_info``'s checks; NaN/Inf voxels (and with
    ``require_signal`` an all-zero image) are a ConversionError."""
    with reraise_as(ConversionError):
        return validation.read_checked_image(path, require_signal=require_signal)


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
    """Raise ConversionError naming both sources if two inputs map onto the same case id, or naming the source of a
    case id that cannot be a file name (``validation.check_path_name``)."""
    from seganypet_nnunet.validation import check_path_name

    seen: dict[str, object] = {}
    for case_id, origin in zip(case_ids, origins, strict=True):
        with reraise_as(ConversionError):
            check_path_name(case_id, field=f"case id (from {origin})")
        if case_id in seen:
            raise ConversionError(f"duplicate case id {case_id!r}: from {seen[case_id]} and {origin}")
        seen[case_id] = origin


# ---------------------------------------------------------------------------------------------------------- geometry
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
def pet_ct_channels(with_ct: bool = True) -> dict[int, str]:
    """dataset.json ``channel_names``: ``_0000`` PET, and ``_0001`` CT when ``with_ct``."""
    return {0: "PET", 1: "CT"} if with_ct else {0: "PET"}


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
    """Put a source image as an nnU-Net channel: byte copy for ``.nii.gz`` sources, re-encode otherwise.

    The source is read and checked first (truncated, NaN/Inf or all-zero images are a ConversionError).
    """
    image = read_image(source, require_signal=True)
    if str(source).lower().endswith(".nii.gz"):
        return put_copy(source, target)
    return put_image(image, target)


# --------------------------------------------------------------------------------------------------- dataset files
def raw_root(output_root: Path | None) -> Path:
    """The nnU-Net raw root: ``output_root`` if given (the CLI's ``-o``), else ``$nnUNet_raw``."""
    return Path(output_root) if output_root is not None else nnunet_folder("nnUNet_raw")


class StagedDataset(NamedTuple):
    """Where a converter writes (``folder``, ``images``, ``labels``: a hidden staging copy) and the final folder."""

    folder: Path
    images: Path
    labels: Path
    final: Path


@contextlib.contextmanager
def staged_dataset(dataset_id: int, name: str, output_root: Path | None) -> Iterator[StagedDataset]:
    """Convert into a hidden staging folder; publish into ``<raw root>/DatasetXXX_Name`` only if the block succeeds.

    Checked before any work: the name (no path tricks) and that no other ``DatasetXXX_*`` uses the id. On success,
    files identical to the published ones are left untouched (re-runs are idempotent), an existing different
    ``splits_final.json`` (raw, or ``$nnUNet_preprocessed`` where the trainer reads it) is an error, never replaced.
    On failure (or ``kill -9``: removed by the next run) nothing is left: no empty folders, no files.
    """
    root = raw_root(output_root)
    final = root / dataset_folder_name(dataset_id, name)
    others = sorted(p.name for p in root.glob(f"Dataset{int(dataset_id):03d}_*") if p.name != final.name)
    if others:
        raise ConversionError(f"{root / others[0]}: dataset id {int(dataset_id)} is already used by another dataset")
    created_root = not root.exists()
    root.mkdir(parents=True, exist_ok=True)
    remove_stale(root)
    stage = Path(tempfile.mkdtemp(prefix=temp_prefix("staging"), dir=root))
    folder = stage / final.name
    for sub in ("imagesTr", "labelsTr"):
        (folder / sub).mkdir(parents=True)
    published = False
    try:
        yield StagedDataset(folder, folder / "imagesTr", folder / "labelsTr", final)
        _publish_dataset(folder, final)
        published = True
    finally:
        shutil.rmtree(stage, ignore_errors=True)
        if created_root and not published:
            with contextlib.suppress(OSError):
                root.rmdir()


def _preprocessed_splits(final: Path) -> Path | None:
    return (
        nnunet_folder("nnUNet_preprocessed") / final.name / SPLITS_FILE
        if os.environ.get("nnUNet_preprocessed")
        else None
    )


def _same_json(a: Path, b: Path) -> bool:
    try:
        return json.loads(a.read_text()) == json.loads(b.read_text())
    except (OSError, json.JSONDecodeError):
        return False


def _publish_dataset(staged: Path, final: Path) -> None:
    """Move every staged file onto ``final`` (identical files kept as they are); splits are never replaced."""
    new_splits = staged / SPLITS_FILE
    if new_splits.is_file():
        for existing in (final / SPLITS_FILE, _preprocessed_splits(final)):
            if existing is not None and existing.is_file() and not _same_json(existing, new_splits):
                raise ConversionError(
                    f"{existing}: a different splits_final.json already exists (trained folds depend on it); "
                    "delete it first to re-split, or use another dataset id"
                )
    files = sorted(p for p in staged.rglob("*") if p.is_file() and TMP_DIR not in p.parts)
    for source in files:
        target = final / source.relative_to(staged)
        if target.is_file() and filecmp.cmp(source, target, shallow=False):
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(source, target)
    pre = _preprocessed_splits(final)
    if pre is not None and (final / SPLITS_FILE).is_file():
        put_json(json.loads((final / SPLITS_FILE).read_text()), pre)


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

    ``staged_dataset`` also puts ``splits_final.json`` into ``$nnUNet_preprocessed/<DatasetXXX_Name>/`` (if set) when
    it publishes, where nnU-Net's trainer reads it (nnU-Net's planning keeps that file); an existing different one
    there is an error. With fewer than 2 patients no splits are written (nnU-Net then makes its own).
    """
    written = [folder / CASE_TO_PATIENT]
    put_json(dict(sorted(case_to_patient.items())), written[0])
    return written + write_patient_splits(
        case_to_patient, sorted(case_to_patient), [folder / SPLITS_FILE], n_splits=n_folds
    )


def add_common_arguments(parser, default_id: int) -> None:
    """The flags every converter shares (nnU-Net grammar)."""
    parser.add_argument(
        "-d", type=int, default=default_id, help=f"[OPTIONAL] nnU-Net dataset id. Default: {default_id}"
    )
    parser.add_argument(
        "-o", type=Path, default=None, help="[OPTIONAL] nnU-Net raw root to write into. Default: $nnUNet_raw"
    )


def run_cli(function, *args, **kwargs):
    """Call a converter from a ``*_entry`` (wrapped in ``errors.cli_entry``) and print the dataset folder."""
    result = function(*args, **kwargs)
    print(result)
    return result
