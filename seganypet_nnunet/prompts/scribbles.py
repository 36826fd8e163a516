"""Scribble simulation for the autoPET V protocol: one scribble on ONE axial slice of the largest error component.

Arrays are (z, y, x) (``sitk.GetArrayFromImage`` order; axis 0 is the axial slice index) and ``spacing_zyx`` is the
voxel size in mm in that order. The placement rule, in order:

1. Errors: FN = ref & ~pred (a positive scribble) and FP = pred & ~ref (a negative scribble), labelled as separate 3D
   components (cc3d, 26-connectivity; an FN component never merges with a touching FP one).
2. Component: the largest by voxel count (ties: first in cc3d raster order), also when an rng is given.
3. Slice: the axial slice where that component's cross-section is largest (ties: the slice nearest the component's
   mean z, then the lower z). Region: the largest 8-connected part of the cross-section on that slice.
4. Centre: the region's interior-most voxel (in-plane EDT in mm, the slice border counting as region border; ties to
   the tied voxel nearest their centroid), or with an rng a random voxel with EDT >= 0.5 x the maximum.
5. Direction: the region's principal axis (largest-variance direction of its voxel centres in mm; along x for a
   single voxel or a round region); with an rng rotated in-plane by an angle uniform in [-jitter_deg, jitter_deg].
6. Line: from the centre both ways along the direction, sampled every 0.25 x the smallest in-plane spacing, each side
   stopping at the first sample outside the region or at ``length_mm`` / 2 from the centre; samples are rounded to
   voxels. So a scribble is at most ``length_mm`` long (default 30 mm) and never leaves the error region.
7. Thickness: ``thickness`` voxels in-plane (a square of side ``thickness``, odd, default 1 = one-voxel-wide line),
   clipped to the region.

A scribble is therefore a non-empty set of voxels on one slice, all inside one error component, and deterministic for
a given rng state (``np.random.default_rng(seed)``) or with ``rng=None``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import cc3d
import numpy as np
from scipy import ndimage

SCRIBBLE_LENGTH_MM = 30.0
SCRIBBLE_THICKNESS = 1
SCRIBBLE_JITTER_DEG = 30.0
_CONNECTIVITY = 26


@dataclass(frozen=True, eq=False)
class Scribble:
    """One simulated scribble.

    Attributes:
        mask: (z, y, x) bool array, shaped like the inputs; True only on slice ``z``.
        positive: True inside a missed region (FN, "add"), False inside a false positive ("remove").
        z: the axial slice index (array axis 0).
        component_voxels: voxel count of the 3D error component it was drawn in.
    """

    mask: np.ndarray
    positive: bool
    z: int
    component_voxels: int


def _largest_error_component(pred: np.ndarray, ref: np.ndarray) -> tuple[np.ndarray, bool] | None:
    kind = np.zeros(ref.shape, np.uint8)
    kind[ref & ~pred] = 1
    kind[pred & ~ref] = 2
    if not kind.any():
        return None
    labels = cc3d.connected_components(kind, connectivity=_CONNECTIVITY)
    counts = np.bincount(labels.ravel())
    chosen = int(np.argmax(counts[1:])) + 1
    component = labels == chosen
    return component, bool(kind[component].flat[0] == 1)


def _best_slice(component: np.ndarray) -> int:
    areas = component.sum(axis=(1, 2))
    z_mean = float(np.average(np.arange(len(areas)), weights=areas))
    best = np.flatnonzero(areas == areas.max())
    return int(best[np.argmin(np.abs(best - z_mean))])  # argmin: first (lower z) on equal distance


def _largest_2d_part(section: np.ndarray) -> np.ndarray:
    labels, n = ndimage.label(section, structure=np.ones((3, 3), bool))
    if n == 1:
        return section
    counts = np.bincount(labels.ravel())
    return labels == int(np.argmax(counts[1:])) + 1


def _centre(region: np.ndarray, spacing_yx: np.ndarray, rng: np.random.Generator | None) -> np.ndarray:
    dist = ndimage.distance_transform_edt(np.pad(region, 1), sampling=spacing_yx)[1:-1, 1:-1]
    if rng is not None:
        candidates = np.argwhere(dist >= 0.5 * dist.max())
        return candidates[rng.integers(len(candidates))].astype(float)
    tied = np.argwhere(dist == dist.max())
    d2 = ((tied - tied.mean(axis=0)) ** 2).sum(axis=1)
    return tied[int(np.argmin(d2))].astype(float)


def _direction(region: np.ndarray, spacing_yx: np.ndarray, rng: np.random.Generator | None, jitter_deg: float):
    """Unit in-plane direction in mm, (y, x) order."""
    pts = np.argwhere(region) * spacing_yx
    direction = np.array([0.0, 1.0])
    if len(pts) > 1:
        values, vectors = np.linalg.eigh(np.cov(pts.T))
        if values[1] > values[0] * (1 + 1e-9):
            direction = vectors[:, 1]
    if rng is not None and jitter_deg > 0:
        a = np.deg2rad(rng.uniform(-jitter_deg, jitter_deg))
        direction = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]]) @ direction
    return direction / np.linalg.norm(direction)


def _line(region: np.ndarray, centre: np.ndarray, direction_mm: np.ndarray, spacing_yx, length_mm: float):
    line = np.zeros(region.shape, bool)
    line[tuple(centre.astype(int))] = True
    step_mm = 0.25 * float(spacing_yx.min())
    for sign in (1.0, -1.0):
        travelled = step_mm
        while travelled <= length_mm / 2.0 + 1e-9:
            p = np.round(centre + sign * travelled * direction_mm / spacing_yx).astype(int)
            if (p < 0).any() or (p >= region.shape).any() or not region[tuple(p)]:
                break
            line[tuple(p)] = True
            travelled += step_mm
    return line


def simulate_scribble(
    pred: np.ndarray,
    ref: np.ndarray,
    spacing_zyx: Sequence[float],
    rng: np.random.Generator | None = None,
    *,
    length_mm: float = SCRIBBLE_LENGTH_MM,
    thickness: int = SCRIBBLE_THICKNESS,
    jitter_deg: float = SCRIBBLE_JITTER_DEG,
) -> Scribble | None:
    """A scribble on the largest error of ``pred`` against ``ref`` (placement rule: module docstring).

    Args:
        pred: (z, y, x) bool prediction.
        ref: (z, y, x) bool reference, same shape.
        spacing_zyx: voxel size in mm, (z, y, x).
        rng: None = deterministic centre and direction; a Generator = seeded random centre and direction jitter.
        length_mm: maximum scribble length in mm (> 0).
        thickness: in-plane width in voxels (odd, >= 1).
        jitter_deg: maximum direction jitter with an rng, degrees.

    Returns:
        Scribble, or None when ``pred`` equals ``ref``.

    Raises:
        ValueError: shapes differ, arrays not 3D, bad spacing, length or thickness.
    """
    pred, ref = np.asarray(pred, bool), np.asarray(ref, bool)
    if pred.ndim != 3 or pred.shape != ref.shape:
        raise ValueError(f"simulate_scribble: pred {pred.shape} and ref {ref.shape} must be 3D arrays of equal shape")
    spacing = np.asarray(spacing_zyx, float)
    if spacing.shape != (3,) or not (spacing > 0).all():
        raise ValueError(f"simulate_scribble: spacing_zyx must be 3 positive numbers, got {spacing_zyx}")
    if length_mm <= 0 or thickness < 1 or thickness % 2 == 0:
        raise ValueError(f"simulate_scribble: need length_mm > 0, odd thickness >= 1; got {length_mm}, {thickness}")
    found = _largest_error_component(pred, ref)
    if found is None:
        return None
    component, positive = found
    z = _best_slice(component)
    region = _largest_2d_part(component[z])
    spacing_yx = spacing[1:]
    centre = _centre(region, spacing_yx, rng)
    line = _line(region, centre, _direction(region, spacing_yx, rng, jitter_deg), spacing_yx, length_mm)
    if thickness > 1:
        line = ndimage.binary_dilation(line, structure=np.ones((thickness, thickness), bool)) & region
    mask = np.zeros(ref.shape, bool)
    mask[z] = line
    return Scribble(mask=mask, positive=positive, z=z, component_voxels=int(component.sum()))
