"""Image file checks shared by the session, the prompt files, the evaluation and the converters (one home).

``read_image_header`` reads only a header (size in ITK order (i, j, k), spacing, origin, direction);
``check_complete`` catches truncated NIfTI files, which SimpleITK reads without complaint (the missing voxels come back
as whatever the decompressor left, with no error).
"""

from __future__ import annotations

import gzip
import math
import struct
from pathlib import Path

import SimpleITK as sitk


def read_image_header(path: str | Path, error: type[Exception] = ValueError) -> sitk.ImageFileReader:
    """Reads only the header of a 3D scalar image file.

    Args:
        path: any SimpleITK-readable image file.
        error: exception class raised on a bad file (callers pass their own, e.g. ``ConversionError``).
    Returns:
        The reader after ``ReadImageInformation`` (``GetSize()`` etc. in ITK order (i, j, k)).
    Raises:
        error: the file is missing, unreadable or not a 3D scalar image (one line naming the file).
    """
    if not Path(path).is_file():
        raise error(f"{path}: file not found")
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    try:
        reader.ReadImageInformation()
    except RuntimeError as err:
        raise error(f"{path}: unreadable image ({str(err).strip().splitlines()[-1][:120]})") from None
    if reader.GetDimension() != 3 or reader.GetNumberOfComponents() != 1:
        raise error(
            f"{path}: expected a 3D scalar image, got dimension {reader.GetDimension()} with "
            f"{reader.GetNumberOfComponents()} component(s)"
        )
    return reader


def _nifti_data_end(header: bytes) -> int | None:
    """Byte offset where a NIfTI-1/-2 file's voxel data ends (vox_offset + voxels * bytes per voxel), or None."""
    for endian in "<>":
        size = struct.unpack(endian + "i", header[:4])[0]
        if size == 348 and len(header) >= 112:
            dim = struct.unpack(endian + "8h", header[40:56])
            bitpix = struct.unpack(endian + "h", header[72:74])[0]
            offset = int(struct.unpack(endian + "f", header[108:112])[0])
        elif size == 540 and len(header) >= 176:
            dim = struct.unpack(endian + "8q", header[16:80])
            bitpix = struct.unpack(endian + "h", header[14:16])[0]
            offset = struct.unpack(endian + "q", header[168:176])[0]
        else:
            continue
        if not 1 <= dim[0] <= 7:
            return None
        return max(offset, size) + math.prod(max(int(d), 1) for d in dim[1 : dim[0] + 1]) * bitpix // 8
    return None


def check_complete(path: str | Path, error: type[Exception] = ValueError) -> None:
    """Raises ``error`` (one line) when a ``.nii`` / ``.nii.gz`` file holds fewer voxel bytes than its header says.

    Other formats are left to SimpleITK. A ``.nii.gz`` is fully decompressed only when its gzip size trailer
    disagrees with the header (concatenated gzip members), so a complete file costs one header read.
    """
    path = Path(path)
    name = path.name.lower()
    if not name.endswith((".nii", ".nii.gz")):
        return
    try:
        if name.endswith(".gz"):
            with gzip.open(path, "rb") as f:
                end = _nifti_data_end(f.read(540))
            if end is None:
                return
            with open(path, "rb") as f:
                f.seek(-4, 2)
                trailer = struct.unpack("<I", f.read(4))[0]
            if trailer == end % 2**32:
                return
            with gzip.open(path, "rb") as f:
                have = sum(len(chunk) for chunk in iter(lambda: f.read(1 << 24), b""))
        else:
            with open(path, "rb") as f:
                end = _nifti_data_end(f.read(540))
            have = path.stat().st_size
    except (OSError, EOFError, struct.error) as err:
        raise error(f"{path}: truncated or corrupt image file ({err})") from None
    if end is not None and have < end:
        raise error(f"{path}: truncated image file ({have} of {end} bytes of header + voxel data)")
