"""Checks of images, labels, input folders and CLI settings, shared by the converters, predict and evaluate.

Every check raises ``SeganypetError`` (or ``InputNotFoundError``) with ONE line naming the file or field, and runs
before any heavy work, so nnU-Net's worker processes never see a bad image. Images are read with SimpleITK; array
axes are (z, y, x), sizes from the header are ITK (i, j, k).
"""

from __future__ import annotations

import gzip
import re
import struct
import zlib
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from seganypet_nnunet.errors import InputNotFoundError, SeganypetError

#: Physical-space tolerances: origin in mm, spacing relative, direction cosines absolute.
ORIGIN_TOL_MM = 1e-3
SPACING_RTOL = 1e-4
DIRECTION_TOL = 1e-4
#: Voxel spacing a PET (or CT / label) image may have, in mm, every axis.
SPACING_RANGE_MM = (0.1, 20.0)
_CHUNK = 1 << 22


# ------------------------------------------------------------------------------------------------------------ files
def check_file(path: str | Path, what: str = "image") -> Path:
    """``path`` is an existing, non-empty regular file (not a folder)."""
    path = Path(path)
    if path.is_dir():
        raise SeganypetError(f"{path}: is a folder, expected a {what} file")
    if not path.is_file():
        raise InputNotFoundError(f"{path}: {what} file not found")
    if path.stat().st_size == 0:
        raise SeganypetError(f"{path}: {what} file is empty (0 bytes)")
    return path


def read_header(path: str | Path, what: str = "image") -> sitk.ImageFileReader:
    """Header of a 3D scalar image (cheap); one-line error for missing, empty, unreadable, 2D/4D or vector images."""
    path = check_file(path, what)
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    try:
        reader.ReadImageInformation()
    except RuntimeError as err:
        raise SeganypetError(f"{path}: unreadable {what} ({_last_line(err)})") from None
    if reader.GetDimension() != 3 or reader.GetNumberOfComponents() != 1:
        raise SeganypetError(
            f"{path}: expected a 3D single-channel {what}, got {reader.GetDimension()}D with "
            f"{reader.GetNumberOfComponents()} component(s) per voxel"
        )
    check_spacing(reader.GetSpacing(), path, what)
    check_nifti_pixdim(path, what)
    check_not_truncated(path, what)
    return reader


def check_spacing(spacing, path: str | Path, what: str = "image") -> None:
    """Voxel spacing (any axis order, mm) finite and within ``SPACING_RANGE_MM`` on every axis."""
    low, high = SPACING_RANGE_MM
    values = [float(v) for v in spacing]
    if not all(np.isfinite(values)) or not all(low <= v <= high for v in values):
        shown = ", ".join(f"{v:g}" for v in values)
        raise SeganypetError(f"{path}: {what} spacing ({shown}) mm is outside {low:g}-{high:g} mm (broken header?)")


def _nifti_pixdim(header: bytes) -> tuple[float, float, float] | None:
    """The (x, y, z) ``pixdim`` of a NIfTI-1/2 header as stored (SimpleITK shows 0 as 1 mm), or None if not NIfTI."""
    for endian in "<>":
        if len(header) >= 348 and struct.unpack(endian + "i", header[:4])[0] == 348:
            return struct.unpack(endian + "8f", header[76:108])[1:4]
        if len(header) >= 540 and struct.unpack(endian + "i", header[:4])[0] == 540:
            return struct.unpack(endian + "8d", header[104:168])[1:4]
    return None


def check_nifti_pixdim(path: str | Path, what: str = "image") -> None:
    """A NIfTI file's stored ``pixdim`` (x, y, z) passes ``check_spacing`` (a pixdim of 0 would be read as 1 mm)."""
    name = Path(path).name.lower()
    if not name.endswith((".nii", ".nii.gz")):
        return
    try:
        with (gzip.open if name.endswith(".gz") else open)(path, "rb") as f:
            pixdim = _nifti_pixdim(f.read(540))
    except (EOFError, OSError, zlib.error):
        return  # check_not_truncated names the broken file
    if pixdim is not None:
        check_spacing(pixdim, path, f"{what} header pixdim")


def check_path_name(value: object, *, field: str) -> str:
    """``value`` used as one path component (dataset/model name, target name, case id): returned unchanged.

    Refuses, with one line naming ``field``: a non-string, an empty name, ``.`` or ``..``, a path separator
    (``/`` or ``\\``, so no absolute path either), a leading ``-`` or ``.`` (options, hidden files), control
    characters and names over 200 characters.
    """
    if not isinstance(value, str):
        raise SeganypetError(f"{field}: expected a name (text), got {type(value).__name__} {value!r}")
    problem = None
    if not value or not value.strip():
        problem = "is empty"
    elif value in (".", "..") or value.startswith("."):
        problem = "may not start with '.' (hidden files, parent folders)"
    elif "/" in value or "\\" in value:
        problem = "may not contain a path separator ('/' or '\\')"
    elif any(ord(c) < 32 or ord(c) == 127 for c in value):
        problem = "may not contain control characters"
    elif value.startswith("-"):
        problem = "may not start with '-'"
    elif len(value) > 200:
        problem = f"is {len(value)} characters long (at most 200)"
    if problem:
        raise SeganypetError(f"{field} {value!r}: {problem}; use letters, digits, '_', '-'")
    return value


def _last_line(err: BaseException) -> str:
    lines = [line.strip() for line in str(err).strip().splitlines() if line.strip()]
    return (lines[-1] if lines else type(err).__name__)[:160]


def _nifti_data_end(header: bytes) -> int | None:
    """Byte offset where a NIfTI-1/2 header says the voxel data ends, or None if ``header`` is not NIfTI."""
    for endian in "<>":
        if len(header) >= 348 and struct.unpack(endian + "i", header[:4])[0] == 348:
            dims = struct.unpack(endian + "8h", header[40:56])
            bitpix = struct.unpack(endian + "h", header[72:74])[0]
            offset = int(struct.unpack(endian + "f", header[108:112])[0])
            break
        if len(header) >= 540 and struct.unpack(endian + "i", header[:4])[0] == 540:
            bitpix = struct.unpack(endian + "h", header[14:16])[0]
            dims = struct.unpack(endian + "8q", header[16:80])
            offset = struct.unpack(endian + "q", header[168:176])[0]
            break
    else:
        return None
    n_dims = max(1, min(int(dims[0]), 7))
    n_voxels = int(np.prod([max(1, int(d)) for d in dims[1 : n_dims + 1]]))
    return max(offset, 352) + n_voxels * max(bitpix, 8) // 8


def nifti_data_end(path: str | Path) -> int | None:
    """Bytes of voxel data plus header a NIfTI file (``.nii`` / ``.nii.gz``, uncompressed) needs, or None."""
    name = Path(path).name.lower()
    if not name.endswith((".nii", ".nii.gz")):
        return None
    try:
        with (gzip.open if name.endswith(".gz") else open)(path, "rb") as f:
            return _nifti_data_end(f.read(540))
    except (EOFError, OSError, zlib.error, struct.error):
        return None


def check_not_truncated(path: str | Path, what: str = "image") -> None:
    """NIfTI files shorter than their header says (SimpleITK would read them zero-filled) or broken gzip streams."""
    path = Path(path)
    name = path.name.lower()
    if name.endswith(".nii"):
        with open(path, "rb") as f:
            end = _nifti_data_end(f.read(540))
        size = path.stat().st_size
        if end is not None and size < end:
            raise SeganypetError(f"{path}: truncated {what} file ({size} bytes, the header needs {end})")
    elif name.endswith(".gz"):
        total, head = 0, b""
        try:
            with gzip.open(path, "rb") as f:
                while chunk := f.read(_CHUNK):
                    if len(head) < 540:
                        head += chunk[:540]
                    total += len(chunk)
        except (EOFError, OSError, zlib.error) as err:
            raise SeganypetError(f"{path}: truncated or corrupt gzip {what} file ({_last_line(err)})") from None
        end = _nifti_data_end(head) if name.endswith(".nii.gz") else None
        if end is not None and total < end:
            raise SeganypetError(f"{path}: truncated {what} file ({total} bytes uncompressed, the header needs {end})")


def read_checked_image(path: str | Path, what: str = "image", require_signal: bool = True) -> sitk.Image:
    """Read a 3D scalar image after the header/truncation checks; reject NaN/Inf and (``require_signal``) all-zero."""
    read_header(path, what)
    try:
        image = sitk.ReadImage(str(path))
    except RuntimeError as err:
        raise SeganypetError(f"{path}: unreadable {what} ({_last_line(err)})") from None
    check_values(sitk.GetArrayViewFromImage(image), path, what, require_signal)
    check_nifti_finite(path, what)
    return image


def check_nifti_finite(path: str | Path, what: str = "image") -> None:
    """NaN/Inf voxels of a floating-point NIfTI file (SimpleITK reads them as 0, so they pass unseen otherwise)."""
    name = Path(path).name.lower()
    if not name.endswith((".nii", ".nii.gz")):
        return
    import nibabel

    try:
        img = nibabel.load(str(path))
        if not np.issubdtype(img.get_data_dtype(), np.floating):
            return
        data = np.asarray(img.dataobj)
    except Exception as err:  # nibabel raises many types for broken files; SimpleITK already read it
        raise SeganypetError(f"{path}: unreadable {what} ({_last_line(err)})") from None
    bad = int(np.count_nonzero(~np.isfinite(data)))
    if bad:
        raise SeganypetError(f"{path}: {what} holds {bad} NaN/Inf voxel(s)")


def check_values(array: np.ndarray, path: str | Path, what: str = "image", require_signal: bool = True) -> None:
    """No NaN/Inf voxels; with ``require_signal`` not all voxels zero."""
    if np.issubdtype(array.dtype, np.floating):
        bad = int(np.count_nonzero(~np.isfinite(array)))
        if bad:
            raise SeganypetError(f"{path}: {what} holds {bad} NaN/Inf voxel(s)")
    if require_signal and not np.any(array):
        raise SeganypetError(f"{path}: {what} is all zero (empty scan?)")


def check_label_values(array: np.ndarray, allowed: Iterable[int], path: str | Path) -> None:
    """Integer-valued labels, every value one of ``allowed`` (dataset.json labels)."""
    if np.issubdtype(array.dtype, np.floating):
        if not np.all(np.isfinite(array)) or not np.all(np.mod(array, 1) == 0):
            raise SeganypetError(f"{path}: label image holds non-integer values (e.g. 0.5); labels must be integers")
    allowed = sorted({int(v) for v in allowed})
    bad = sorted(set(np.unique(array).astype(np.int64).tolist()) - set(allowed))
    if bad:
        raise SeganypetError(f"{path}: label values {bad[:10]} are not in the dataset's labels {allowed}")


# --------------------------------------------------------------------------------------------------------- geometry
def _geometry(img) -> tuple:
    return tuple(img.GetSize()), np.array(img.GetSpacing()), np.array(img.GetOrigin()), np.array(img.GetDirection())


def geometry_difference(a, b) -> str | None:
    """How the grids of two sitk images/readers differ in physical space (size, spacing, direction, origin), or None."""
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


def check_same_grid(reference, other, ref_path: str | Path, other_path: str | Path) -> None:
    """``other`` lies on the grid of ``reference`` (physical space, tolerances above)."""
    diff = geometry_difference(reference, other)
    if diff is not None:
        raise SeganypetError(f"{other_path}: grid differs from {Path(ref_path).name} ({diff})")


# ----------------------------------------------------------------------------------------------------- input folders
def scan_input_folder(folder: str | Path, file_ending: str, n_channels: int) -> dict[str, list[str]]:
    """``{case: [channel files]}`` of an nnU-Net input folder (``CASE_XXXX<ending>``), every file checked.

    Rejects: a missing folder, no cases, a file or folder with the ending but no ``_XXXX`` channel suffix, a folder
    named like an image, a missing or extra channel, unreadable/empty/truncated/2D/4D files, NaN/Inf or all-zero
    images and channels on different grids. Hidden entries (``.name``) are ignored.
    """
    folder = Path(folder)
    if folder.is_file():
        raise SeganypetError(f"{folder}: is a file, expected an input folder")
    if not folder.is_dir():
        raise InputNotFoundError(f"{folder}: input folder not found")
    pattern = re.compile(r"^(.+)_(\d{4})" + re.escape(file_ending) + "$")
    channels: dict[str, dict[int, Path]] = {}
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith(".") or not entry.name.endswith(file_ending):
            continue
        if entry.is_dir():
            raise SeganypetError(f"{entry}: is a folder named like an image")
        m = pattern.match(entry.name)
        if m is None:
            raise SeganypetError(f"{entry}: name must be CASE_XXXX{file_ending} (XXXX = 4-digit channel, e.g. _0000)")
        channels.setdefault(m.group(1), {})[int(m.group(2))] = entry
    if not channels:
        raise SeganypetError(f"{folder}: no images named CASE_0000{file_ending} in the input folder")
    cases = {}
    for case, found in channels.items():
        expected = set(range(n_channels))
        if set(found) != expected:
            missing = sorted(expected - set(found))
            extra = sorted(set(found) - expected)
            problem = f"missing channel _{missing[0]:04d}" if missing else f"unexpected channel _{extra[0]:04d}"
            raise SeganypetError(
                f"{folder / (case + '_' + str(sorted(found)[0]).zfill(4) + file_ending)}: case {case!r} {problem} "
                f"(the model expects {n_channels} channel(s): _0000..._{n_channels - 1:04d})"
            )
        files = [found[c] for c in range(n_channels)]
        ref = None
        for f in files:
            image = read_checked_image(f)
            if ref is None:
                ref = (image, f)
            else:
                check_same_grid(ref[0], image, ref[1], f)
        cases[case] = [str(f) for f in files]
    return cases


# ------------------------------------------------------------------------------------------------------ CLI settings
def check_device(name: str) -> None:
    """``-device`` names a device this machine has (cuda needs CUDA, mps needs MPS)."""
    import torch

    if name == "cuda" and not torch.cuda.is_available():
        raise SeganypetError(
            "-device cuda: CUDA is not available on this machine: no CUDA device found; run with -device cpu"
        )
    if name == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        raise SeganypetError("-device mps: MPS is not available on this machine (use -device cpu)")


def check_output_folder(output: str | Path, inputs: Mapping[str, str | Path | None]) -> Path:
    """``-o`` is not an existing file and not one of the input folders (``{flag: folder}``)."""
    output = Path(output)
    if output.exists() and not output.is_dir():
        raise SeganypetError(f"{output}: -o is an existing file, expected an output folder")
    for flag, folder in inputs.items():
        if folder is not None and Path(folder).exists() and output.exists() and output.samefile(folder):
            raise SeganypetError(f"{output}: -o is the same folder as {flag}; choose a separate output folder")
        if folder is not None and output.resolve() == Path(folder).resolve():
            raise SeganypetError(f"{output}: -o is the same folder as {flag}; choose a separate output folder")
    check_writable(output, "-o")
    return output


def check_writable(folder: str | Path, flag: str = "-o") -> None:
    """The nearest existing folder of ``folder`` accepts a new file (a probe file, removed at once): a read-only file
    system or missing permission is one line before any work, not a traceback after it."""
    import os
    import tempfile

    existing = Path(folder).absolute()
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise SeganypetError(f"{folder}: {flag} lies under {existing}, which is a file")
    try:
        fd, probe = tempfile.mkstemp(prefix=".seganypet-probe-", dir=existing)
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise SeganypetError(f"{existing}: {flag} is not writable ({err.strerror})") from None


def check_label_file(path: str | Path, allowed: Iterable[int], reference=None, ref_path: str | Path | None = None):
    """A label map: 3D, readable, not truncated, integer values in ``allowed``; on ``reference``'s grid if given.

    Returns the image header reader (geometry) of ``path``.
    """
    header = read_header(path, "label")
    if reference is not None:
        check_same_grid(reference, header, ref_path, path)
    try:
        image = sitk.ReadImage(str(path))  # kept alive while its array view is used
    except RuntimeError as err:
        raise SeganypetError(f"{path}: unreadable label ({_last_line(err)})") from None
    check_label_values(sitk.GetArrayViewFromImage(image), allowed, path)
    check_nifti_finite(path, "label")
    return header
