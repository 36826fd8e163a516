"""Argument checks of ``SegAnyPETSession``'s public methods: the session API refuses what the command line refuses.

Each raises ``SeganypetError`` (a ValueError) with one line naming the method and the argument.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from seganypet_nnunet.errors import SeganypetError


def check_positive(positive, where: str) -> None:
    """``positive`` is a bool (numpy bools and the integers 0 / 1 too); ``'no'`` must not count as positive."""
    if isinstance(positive, (bool, np.bool_)) or (isinstance(positive, (int, np.integer)) and positive in (0, 1)):
        return
    raise SeganypetError(f"{where}: positive must be True or False, got {positive!r}")


def check_mask_values(mask, where: str) -> None:
    """A mask prompt: a numeric array without NaN/Inf (bool, integer or float 0/1)."""
    array = np.asarray(mask)
    if not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
        raise SeganypetError(f"{where}: mask must be a numeric (z, y, x) array, got dtype {array.dtype}")
    if np.issubdtype(array.dtype, np.floating):
        bad = int(array.size - np.count_nonzero(np.isfinite(array)))
        if bad:
            raise SeganypetError(f"{where}: mask holds {bad} NaN/Inf value(s)")


def check_image_like_cli(data: np.ndarray, props: dict, files: list) -> None:
    """``set_image`` refuses what ``seganypet_predict`` refuses: an all-zero image, NaN/Inf voxels in a NIfTI file, a
    stored pixdim of 0 and a spacing outside ``validation.SPACING_RANGE_MM`` (``data``: (c, z, y, x);
    ``props["spacing"]``: array order (z, y, x))."""
    from seganypet_nnunet.validation import check_nifti_finite, check_nifti_pixdim, check_spacing

    for f in files:
        if isinstance(f, (str, Path)):
            check_nifti_pixdim(f)  # a stored pixdim of 0 reads as 1 mm
            check_nifti_finite(f)  # SimpleITK reads NaN voxels of a NIfTI file as 0
    where = f"set_image: {files[0]}" if files else "set_image"
    if not np.any(data):
        raise SeganypetError(f"{where}: the image is all zero (empty scan?)")
    check_spacing(props.get("spacing", (1.0, 1.0, 1.0)), where)
