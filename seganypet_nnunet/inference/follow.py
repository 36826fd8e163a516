"""Targets larger than one patch (liver, lungs, bulky lesions): follow the mask across neighbouring crops.

A pure algorithm over a ``segment_crop(crop_box, prev_logits_crop) -> logits_crop`` callable. All boxes and arrays are
in **preprocessed voxel** space, axes (P0, P1, P2) (the session's full-image logit buffer); a box is
``((start0, stop0), (start1, stop1), (start2, stop2))``, half-open, one pair per preprocessed axis. This mirrors
SegAnyPET's "extend with a 50 % overlapping window when the prediction touches the edge" and nnInteractive's
border-change check.
"""

from __future__ import annotations

from collections import deque
from typing import Callable, Sequence

import numpy as np

Box = tuple[tuple[int, int], tuple[int, int], tuple[int, int]]
SegmentCrop = Callable[[Box, np.ndarray], np.ndarray]


def box_slices(box: Box) -> tuple[slice, slice, slice]:
    """Slices for a half-open box (preprocessed voxel axis order)."""
    return tuple(slice(a, b) for a, b in box)


def centred_box(centre_pre: Sequence[float], patch: Sequence[int], shape: Sequence[int], clamp: bool = True) -> Box:
    """A patch-size box centred on ``centre_pre``, clamped into the image (smaller if the image is smaller).

    Args:
        centre_pre: (3,) preprocessed voxel coordinate (float).
        patch: (3,) patch size, preprocessed axis order.
        shape: (3,) preprocessed image shape.
        clamp: False: the box stays centred (start = round(centre) - patch // 2, as torchio's ``CropOrPad`` centred
            on one voxel) and may leave the image; the caller zero-pads (``clip_box`` gives the part inside).
    Returns:
        Half-open box in preprocessed voxel space; its size is ``min(patch, shape)`` per axis (``patch`` unclamped).
    """
    box = []
    for c, p, s in zip(centre_pre, patch, shape, strict=True):
        p = int(p) if not clamp else min(int(p), int(s))
        start = int(np.floor(float(c) + 0.5)) - p // 2
        if clamp:
            start = max(0, min(start, int(s) - p))
        box.append((start, start + p))
    return tuple(box)


def clip_box(box: Box, shape: Sequence[int]) -> Box:
    """The part of ``box`` inside an image of ``shape`` (preprocessed voxel space)."""
    return tuple((max(a, 0), min(b, int(s))) for (a, b), s in zip(box, shape, strict=True))


def shifted_box(box: Box, axis: int, direction: int, patch: Sequence[int], shape: Sequence[int]) -> Box:
    """``box`` moved by half a patch along ``axis`` (direction -1 or +1), clamped into the image."""
    centre_pre = [(a + b - 1) / 2 for a, b in box]
    centre_pre[axis] += direction * (int(patch[axis]) // 2)
    return centred_box(centre_pre, patch, shape)


def touching_sides(mask_crop: np.ndarray, box: Box, shape: Sequence[int], min_voxels: int = 1) -> list[tuple[int, int]]:
    """Sides of ``box`` where the mask reaches the crop border and the border is not the image border.

    Args:
        mask_crop: bool array of the box's shape (preprocessed axis order).
        box: the crop box (preprocessed voxel space).
        shape: preprocessed image shape.
        min_voxels: foreground voxels needed on a border slab to count as touching.
    Returns:
        List of (axis, direction) with direction -1 (low side) or +1 (high side).
    """
    sides = []
    for axis in range(3):
        (a, b), s = box[axis], int(shape[axis])
        for direction, open_side, index in ((-1, a > 0, 0), (1, b < s, -1)):
            if open_side and int(np.take(mask_crop, index, axis=axis).sum()) >= min_voxels:
                sides.append((axis, direction))
    return sides


def follow_object(
    segment_crop: SegmentCrop,
    logits: np.ndarray,
    first_crop_pre: Box,
    patch: Sequence[int],
    max_crops: int = 8,
    min_border_voxels: int = 1,
) -> list[Box]:
    """Segment ``first_crop_pre``, then extend into neighbouring crops while the mask touches an inner crop border.

    ``first_crop_pre`` may leave the image (an unclamped ``centred_box``): ``segment_crop`` then gets that box and the
    buffer content of the part inside (``clip_box``) and returns logits of that part; the boxes returned are the
    parts inside. The first crop overwrites the buffer (it may shrink the mask after a negative click). Extension crops
    receive the current buffer content as dense prompt and are merged with ``max`` where they overlap already-visited
    crops, so an extension only adds to the object. The loop ends when no open border is touched or after ``max_crops``.

    Args:
        segment_crop: ``(box, prev_logits_crop) -> logits_crop``; both arrays have the shape of the box's part
            inside the image.
        logits: (P0, P1, P2) float full-image logit buffer in preprocessed voxel space; **updated in place**.
        first_crop_pre: crop to segment first (preprocessed voxel space, half-open).
        patch: (3,) patch size; neighbouring crops are shifted by ``patch // 2``.
        max_crops: upper bound on crops run (>= 1).
        min_border_voxels: foreground voxels on a border slab that trigger an extension.
    Returns:
        The boxes segmented, in order.
    """
    if max_crops < 1:
        raise ValueError(f"follow_object: max_crops must be >= 1, got {max_crops}")
    shape = logits.shape
    visited: list[Box] = []
    covered = np.zeros(shape, dtype=bool)
    queue: deque[Box] = deque([first_crop_pre])
    while queue and len(visited) < max_crops:
        full = queue.popleft()
        box = clip_box(full, shape)
        if box in visited:
            continue
        sl = box_slices(box)
        new = np.asarray(segment_crop(full, logits[sl].copy()), dtype=logits.dtype)
        if new.shape != logits[sl].shape:
            raise ValueError(f"segment_crop returned shape {new.shape} for box {box}, expected {logits[sl].shape}")
        if visited:
            logits[sl] = np.where(covered[sl], np.maximum(logits[sl], new), new)
        else:
            logits[sl] = new
        covered[sl] = True
        visited.append(box)
        for axis, direction in touching_sides(logits[sl] > 0, box, shape, min_border_voxels):
            nxt = shifted_box(box, axis, direction, patch, shape)
            if nxt not in visited and nxt not in queue and not covered[box_slices(nxt)].all():
                queue.append(nxt)
    return visited
