"""Argument checks of ``SegAnyPETSession``'s public methods: the session API refuses what the command line refuses.

Each raises a ValueError (most a ``SeganypetError``) with one line naming the method and the argument.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from seganypet_nnunet.errors import SeganypetError
from seganypet_nnunet.inference.image_input import read_image
from seganypet_nnunet.inference.target import Target


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


def read_image_checked(image, properties: dict | None, plans_manager) -> tuple[np.ndarray, dict]:
    """``set_image``'s reading (``image_input.read_image``: data (c, z, y, x), nnU-Net properties) and refusals: a
    truncated or unreadable file, NaN/Inf voxels, and what ``check_image_like_cli`` refuses."""
    from seganypet_nnunet.validation import check_not_truncated

    files = [image] if isinstance(image, (str, Path)) else image if isinstance(image, list) else []
    for f in files:
        if isinstance(f, (str, Path)) and Path(f).is_file():
            check_not_truncated(f)
    try:
        data, props = read_image(image, properties, plans_manager)
    except RuntimeError as err:  # SimpleITK: unreadable file
        raise ValueError(f"set_image: cannot read {files}: {str(err).strip().splitlines()[-1][:160]}") from None
    bad = int(data.size - np.count_nonzero(np.isfinite(data)))
    if bad:
        raise ValueError(f"set_image: the image holds {bad} NaN or Inf voxel(s); fix or mask them first")
    check_image_like_cli(data, props, files)
    return data, props


def check_points(target: Target, labels: list[int], max_points: int, where: str) -> None:
    """New points with ``labels`` (1/0) for ``target``: no negative-only prompting of a target without a positive
    prompt, and at most ``max_points`` points per target (the model's limit)."""
    if not any(labels) and not target.has_positive_prompt():
        raise ValueError(
            f"{where}: target {target.name!r} has no positive prompt yet; start with a positive click, a box or a mask"
        )
    if len(target.points) + len(labels) > max_points:
        raise ValueError(
            f"{where}: target {target.name!r} would have {len(target.points) + len(labels)} points; the model accepts "
            f"at most {max_points} (undo, reset or start a new target)"
        )


def check_box_corners(
    corner_min: Sequence[float], corner_max: Sequence[float], space: str, where: str
) -> tuple[np.ndarray, np.ndarray]:
    """Two inclusive box corners in ``space`` (world mm LPS (x, y, z) or original voxel (i, j, k)): 3 finite numbers
    each, min <= max per axis, and no zero extent in world mm; returns them as float (3,) arrays, same space."""
    lo, hi = np.asarray(corner_min, float), np.asarray(corner_max, float)
    if lo.shape != (3,) or hi.shape != (3,) or not (np.isfinite(lo).all() and np.isfinite(hi).all()):
        raise ValueError(f"{where}: corners must be 3 finite numbers each, got {corner_min!r}, {corner_max!r}")
    if (lo > hi).any():
        axis = int(np.argmax(lo > hi))
        raise ValueError(f"{where}: min {list(lo)} exceeds max {list(hi)} on axis {axis} ({space})")
    if space == "world" and (lo == hi).any():
        raise ValueError(f"{where}: zero-volume box, min equals max on axis {int(np.argmax(lo == hi))} (world mm)")
    return lo, hi
