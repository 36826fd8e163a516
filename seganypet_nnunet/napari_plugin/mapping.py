"""Viewer <-> session coordinates.

The viewer shows the PET image in its ARRAY index space, array axes (z, y, x) as napari's dims 0, 1, 2, with
``scale`` = voxel spacing in (z, y, x) order, so voxels keep their physical proportions, and no rotation: the image is
shown as stored (as readers see it), whatever its direction matrix. Every prompt layer (points, box, scribble) uses
the same scale, so a layer's DATA coordinate is an array index (z, y, x); a voxel is drawn centred on its integer
index. A click is rounded to the voxel drawn under it and handed to the session as an ITK voxel index (i, j, k) = the
array index reversed, with ``space="voxel"``; the session maps it to world LPS mm through the image's own origin,
spacing and direction (``coordinates.voxel_to_world``), so the world point is the one of the voxel on screen.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import SimpleITK as sitk

from seganypet_nnunet.errors import SeganypetError


def layer_scale(image: sitk.Image) -> tuple[float, float, float]:
    """napari ``scale`` of every layer over ``image``: its voxel spacing in array order (z, y, x), mm."""
    return tuple(float(s) for s in reversed(image.GetSpacing()))


def data_to_voxel(point_zyx: Sequence[float], shape_zyx: Sequence[int]) -> tuple[int, int, int]:
    """A layer data coordinate, array index (z, y, x) float, -> ITK voxel index (i, j, k) of the voxel drawn there.

    Raises:
        SeganypetError: the point lies outside the image.
    """
    zyx = np.rint(np.asarray(point_zyx, float)).astype(int)
    if zyx.shape != (3,):
        raise SeganypetError(f"a prompt point needs 3 coordinates (z, y, x), got {list(point_zyx)}")
    if (zyx < 0).any() or (zyx >= np.asarray(shape_zyx)).any():
        raise SeganypetError(f"the point (z, y, x) {zyx.tolist()} lies outside the image {list(shape_zyx)}")
    return tuple(int(v) for v in zyx[::-1])


def rectangle_to_box(
    vertices_zyx: np.ndarray, depth_mm: float, spacing_zyx: Sequence[float], shape_zyx: Sequence[int]
) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    """A rectangle drawn on one slice, extended ``depth_mm`` in total across it, as a voxel box.

    Args:
        vertices_zyx: (4, 3) rectangle corners, layer data coordinates = array index (z, y, x); one axis is constant
            (the slice it was drawn on).
        depth_mm: total extent across the slice, centred on it (0: the slice only).
        spacing_zyx: voxel spacing (z, y, x) mm.
        shape_zyx: image shape (z, y, x).
    Returns:
        Inclusive (min, max) corners as ITK voxel index (i, j, k), clipped to the image.
    Raises:
        SeganypetError: not drawn on one slice, negative depth, or the box misses the image.
    """
    v = np.asarray(vertices_zyx, float)
    if v.ndim != 2 or v.shape[1] != 3 or len(v) < 2:
        raise SeganypetError(f"a box needs corners with 3 coordinates (z, y, x), got shape {v.shape}")
    if not np.isfinite(depth_mm) or depth_mm < 0:
        raise SeganypetError(f"box depth must be >= 0 mm, got {depth_mm}")
    flat = np.flatnonzero(np.ptp(v, axis=0) < 1e-6)
    if len(flat) != 1:
        raise SeganypetError("draw the box as a rectangle on one slice (2D view)")
    lo, hi = v.min(axis=0), v.max(axis=0)
    half = depth_mm / 2 / float(spacing_zyx[flat[0]])
    lo[flat[0]] -= half
    hi[flat[0]] += half
    top = np.asarray(shape_zyx) - 1
    lo, hi = np.rint(lo).astype(int), np.rint(hi).astype(int)
    if (hi < 0).any() or (lo > top).any():
        raise SeganypetError("the box lies outside the image")
    lo, hi = np.clip(lo, 0, top), np.clip(hi, 0, top)
    return tuple(int(x) for x in lo[::-1]), tuple(int(x) for x in hi[::-1])
