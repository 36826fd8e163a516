"""What a PET reader grows from one click: fixed-fraction-of-local-SUVmax and absolute-SUV regions, and PERCIST's
liver-referenced threshold, each kept as the connected component that holds the seed.

One home for these regions: the evaluator scores them as reference methods (``evaluation/reference_methods.py``) and
the session (``inference/click_policy.py``) and the trainer use ``prior_region`` as the initial mask prompt of a hot
target.

Space: every function works on ONE SUV image as a (z, y, x) array (``sitk.GetArrayFromImage`` order), seeds are array
indices (z, y, x) (voxel centre at integer; rounded), spacings are mm in array order (z, y, x). Connectivity 26.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import cc3d
import numpy as np
from scipy import ndimage

#: local SUVmax = max SUV within this radius (mm) of the click (a 3-cm sphere, the PERCIST/EORTC peak-search size).
LOCAL_MAX_RADIUS_MM = 15.0
#: PERCIST liver reference: 1.5 x liver mean + 2 x liver SD; the liver VOI without labels is a sphere of this radius.
LIVER_VOI_RADIUS_MM = 15.0
#: the PET prior's gate (``prior_region``; ``inference/click_policy.ClickPolicy`` defaults, the trainer's prior too):
#: 41 % of the local SUVmax, only on a hot spot (local SUVmax >= 4), at most 1.5 L.
PRIOR_FRACTION = 0.41
PRIOR_MIN_SUVMAX = 4.0
PRIOR_MAX_ML = 1500.0


@dataclass(frozen=True)
class LocalMax:
    """Peak near a seed: ``value`` (SUV) at array index ``index`` (z, y, x)."""

    value: float
    index: tuple[int, int, int]


def region_box(region_zyx: np.ndarray, margin: int) -> tuple[slice, slice, slice]:
    """Slices of the bool region's bounding box grown by ``margin`` voxels, clipped into the image (whole image when
    the region is empty): morphology of the region within ``margin`` voxels is exact inside it."""
    out = []
    for axis, n in enumerate(region_zyx.shape):
        hit = np.flatnonzero(region_zyx.any(axis=tuple(a for a in range(3) if a != axis)))
        lo, hi = (int(hit[0]), int(hit[-1]) + 1) if len(hit) else (0, n)
        out.append(slice(max(0, lo - margin), min(n, hi + margin)))
    return tuple(out)


def seed_index(seed_zyx: Sequence[float], shape: Sequence[int]) -> tuple[int, int, int]:
    """Rounded array index (z, y, x) of a seed, clipped into the image."""
    return tuple(int(np.clip(round(float(c)), 0, n - 1)) for c, n in zip(seed_zyx, shape, strict=True))


def _ball_box(centre: Sequence[int], spacing_zyx: Sequence[float], radius_mm: float, shape: Sequence[int]):
    """Slices of the box around ``centre`` (z, y, x) that holds the ball, and the ball mask inside that box."""
    half = [int(np.ceil(radius_mm / s)) for s in spacing_zyx]
    lo = [max(0, c - h) for c, h in zip(centre, half, strict=True)]
    hi = [min(n, c + h + 1) for c, h, n in zip(centre, half, shape, strict=True)]
    grids = np.ogrid[tuple(slice(a - c, b - c) for a, b, c in zip(lo, hi, centre, strict=True))]
    d2 = sum((g * s) ** 2 for g, s in zip(grids, spacing_zyx, strict=True))
    return tuple(slice(a, b) for a, b in zip(lo, hi, strict=True)), d2 <= radius_mm**2


def local_max(
    suv_zyx: np.ndarray, seed_zyx: Sequence[float], spacing_zyx: Sequence[float], radius_mm: float = LOCAL_MAX_RADIUS_MM
) -> LocalMax:
    """Hottest voxel within ``radius_mm`` of the seed (array index (z, y, x)); ties go to the first in C order."""
    centre = seed_index(seed_zyx, suv_zyx.shape)
    box, ball = _ball_box(centre, spacing_zyx, radius_mm, suv_zyx.shape)
    crop = np.where(ball, suv_zyx[box], -np.inf)
    flat = int(np.argmax(crop))
    offset = np.unravel_index(flat, crop.shape)
    index = tuple(int(s.start + o) for s, o in zip(box, offset, strict=True))
    return LocalMax(float(suv_zyx[index]), index)


def prior_region(
    suv_zyx: np.ndarray,
    seed_zyx: Sequence[float],
    spacing_zyx: Sequence[float],
    *,
    fraction: float = PRIOR_FRACTION,
    min_suvmax: float = PRIOR_MIN_SUVMAX,
    max_ml: float = PRIOR_MAX_ML,
) -> np.ndarray | None:
    """The reader's region for a first positive click at array index ``seed_zyx`` (z, y, x), or None when the gate
    (hot spot, click in the region, volume cap) says the click is not on a hot target. Bool (z, y, x).

    Shared by the session's click policy and the trainer's PET-prior prompts, so both gate the prior the same way.
    """
    peak = local_max(suv_zyx, seed_zyx, spacing_zyx)
    if peak.value < min_suvmax:
        return None
    region = grow(suv_zyx >= fraction * peak.value, peak.index)
    if region.sum() * float(np.prod(spacing_zyx)) / 1000.0 > max_ml:
        return None
    box, seed = region_box(region, 1), seed_index(seed_zyx, suv_zyx.shape)  # exact: a 1-voxel margin suffices
    if not all(sl.start <= c < sl.stop for sl, c in zip(box, seed, strict=True)):
        return None
    near = ndimage.binary_dilation(ndimage.binary_fill_holes(region[box]), np.ones((3, 3, 3), bool))
    return region if near[tuple(c - sl.start for sl, c in zip(box, seed, strict=True))] else None


def grow(candidate: np.ndarray, seed_zyx: Sequence[float]) -> np.ndarray:
    """The 26-connected component of the bool ``candidate`` (z, y, x) that holds the seed; empty if the seed is not in
    ``candidate``."""
    seed = seed_index(seed_zyx, candidate.shape)
    if not candidate[seed]:
        return np.zeros(candidate.shape, bool)
    labels = cc3d.connected_components(candidate, connectivity=26)
    return labels == labels[seed]


def fraction_region(
    suv_zyx: np.ndarray,
    seed_zyx: Sequence[float],
    spacing_zyx: Sequence[float],
    fraction: float,
    *,
    from_hottest: bool = False,
    radius_mm: float = LOCAL_MAX_RADIUS_MM,
) -> np.ndarray:
    """SUV >= ``fraction`` x local SUVmax (max within ``radius_mm`` of the seed), grown from the seed or, with
    ``from_hottest``, from that local-max voxel. Bool (z, y, x)."""
    peak = local_max(suv_zyx, seed_zyx, spacing_zyx, radius_mm)
    start = peak.index if from_hottest else seed_zyx
    return grow(suv_zyx >= fraction * peak.value, start)


def absolute_region(suv_zyx: np.ndarray, seed_zyx: Sequence[float], threshold: float) -> np.ndarray:
    """SUV >= ``threshold`` grown from the seed. Bool (z, y, x)."""
    return grow(suv_zyx >= threshold, seed_zyx)


def contrast(suv_zyx: np.ndarray, region_zyx: np.ndarray, shell_voxels: int = 2) -> float:
    """Mean SUV inside the bool ``region_zyx`` over the mean SUV of the ``shell_voxels``-thick shell around it (26-
    neighbourhood dilations); how well the region stands out from what surrounds it. inf for an empty shell mean."""
    from scipy import ndimage

    box = region_box(region_zyx, shell_voxels)  # the shell lies inside the region's box + its thickness
    region, suv = region_zyx[box], suv_zyx[box]
    shell = ndimage.binary_dilation(region, np.ones((3, 3, 3), bool), iterations=shell_voxels) & ~region
    outside = float(suv[shell].mean()) if shell.any() else 0.0
    inside = float(suv[region].mean())
    return inside / outside if outside > 0 else float("inf")


def liver_threshold(suv_zyx: np.ndarray, liver_zyx: np.ndarray) -> float:
    """PERCIST's liver-referenced threshold: 1.5 x mean + 2 x SD of the SUV inside the liver VOI (bool (z, y, x)).

    Raises:
        ValueError: the VOI is empty.
    """
    values = suv_zyx[liver_zyx]
    if not values.size:
        raise ValueError("liver_threshold: the liver VOI is empty")
    return float(1.5 * values.mean() + 2.0 * values.std())


def sphere_voi(
    shape: Sequence[int],
    centre_zyx: Sequence[float],
    spacing_zyx: Sequence[float],
    radius_mm: float = LIVER_VOI_RADIUS_MM,
) -> np.ndarray:
    """Bool (z, y, x) sphere of ``radius_mm`` around ``centre_zyx`` (array index), e.g. PERCIST's 3-cm liver VOI."""
    out = np.zeros(tuple(shape), bool)
    box, ball = _ball_box(seed_index(centre_zyx, shape), spacing_zyx, radius_mm, shape)
    out[box] = ball
    return out
