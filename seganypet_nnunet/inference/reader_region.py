"""Corrections of a target the reader's region answered: a click moves the threshold or splits the region, the way a
reader corrects a threshold region, instead of going through the network (docs/DESIGN.md, "Clicks on PET").

When the session answers a first click with the reader's region (``click_policy.prior_is_answer``: a bladder, a
lesion in soft tissue) and the network's own first answer agreed with it less than ``ClickPolicy.reader_max_agreement``
(the network does not know this target; it knows a brain), the target keeps a ``ReaderRegion`` state and its
corrections mean:

- a positive click outside the region lowers the threshold to the clicked voxel's SUV (never raises it), and the
  region is every 26-connected component of SUV >= threshold that holds a positive click: the clicked voxel joins
  with what is at least as hot and connected to it (a disconnected hot spot joins as its own component);
- a negative click splits the region: a watershed of the SUV inside the region from the positive clicks (label 1)
  and the negative clicks (label 2); the negative basins are removed, but only their voxels nearer (mm) to a negative
  click than to every positive click and at most ``ClickPolicy.reader_cut_ratio`` x as hot as the hottest negative
  click (a click on a hot neighbour merged with a lesion cuts the neighbour off at the SUV valley between them; a
  click on a warm rim cannot take away the hotter target behind it, nor the part of the target around a positive
  click);
- a positive click only adds voxels, and none farther from it than ``ClickPolicy.correction_reach`` x its distance
  to the mask; a negative click only removes voxels (as for network corrections);
- a click the region cannot follow returns None (the session hands the click to the network and the target leaves
  this mode): a positive click the new region does not reach, a mask more than ``ClickPolicy.reader_max_growth`` x
  the current one, a negative click whose voxel stays or that empties the mask.

The region is a function of the state and the current mask, so undo restores the state (``UndoStep.reader``).

Space: the ORIGINAL image, SUV array (z, y, x); clicks are array indices (z, y, x); spacing mm in array order.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Sequence

import cc3d
import numpy as np
from skimage.segmentation import watershed

from seganypet_nnunet.inference.click_policy import ClickPolicy, within_reach
from seganypet_nnunet.prompts import pet_regions as R

Index = tuple[int, int, int]


@dataclass(frozen=True)
class ReaderRegion:
    """A target answered by the reader's region: threshold ``fraction`` x ``peak`` (the first click's local SUVmax),
    and the clicks so far as array indices (z, y, x)."""

    peak: float
    fraction: float
    positives: tuple[Index, ...]
    negatives: tuple[Index, ...] = ()


def start(
    suv_zyx: np.ndarray,
    seed_zyx: Sequence[float],
    spacing_zyx: Sequence[float],
    fraction: float,
    region_zyx: np.ndarray | None = None,
) -> ReaderRegion:
    """The state of the reader's region of a first click at array index ``seed_zyx`` (``click_policy.pet_prior``'s
    region: SUV >= ``fraction`` x local SUVmax grown from the hottest voxel; pass it as ``region_zyx`` when it is at
    hand, else it is grown here). Its positive marker is the click when the click lies in the region, else the
    hottest voxel."""
    peak = R.local_max(suv_zyx, seed_zyx, spacing_zyx)
    seed_voxel_zyx = R.seed_index(seed_zyx, suv_zyx.shape)
    if region_zyx is None:
        region_zyx = R.grow(suv_zyx >= fraction * peak.value, peak.index)
    return ReaderRegion(peak.value, fraction, (seed_voxel_zyx if region_zyx[seed_voxel_zyx] else peak.index,))


def region(suv_zyx: np.ndarray, state: ReaderRegion, spacing_zyx: Sequence[float], cut_ratio: float) -> np.ndarray:
    """The bool (z, y, x) region of ``state`` (module docstring: threshold components of the positive clicks, split
    by the negative clicks; a cut removes voxels at most ``cut_ratio`` x the hottest negative click's SUV)."""
    labels = cc3d.connected_components(suv_zyx >= state.fraction * state.peak, connectivity=26)
    ids = list({int(labels[p]) for p in state.positives} - {0})
    out = np.isin(labels, ids)
    negatives = [q for q in state.negatives if out[q]]
    if not negatives or not out.any():
        return out
    nz = np.nonzero(out)
    box = tuple(slice(int(a.min()), int(a.max()) + 1) for a in nz)
    origin = np.array([s.start for s in box])
    markers = np.zeros(out[box].shape, np.int32)
    for q in negatives:
        markers[tuple(np.asarray(q) - origin)] = 2
    positives = [q for q in state.positives if out[q]]
    for q in positives:
        markers[tuple(np.asarray(q) - origin)] = 1
    basins = watershed(-suv_zyx[box].astype(np.float64), markers, mask=out[box])
    removable = _nearest(negatives, positives, markers.shape, origin, spacing_zyx)
    removable &= suv_zyx[box] <= cut_ratio * max(float(suv_zyx[q]) for q in negatives)
    out[box] &= ~((basins == 2) & removable)
    return out


def _nearest(
    negatives: list[Index], positives: list[Index], shape: Sequence[int], origin: np.ndarray, spacing_zyx
) -> np.ndarray:
    """Bool mask of a box (``shape``, starting at array index ``origin``): voxels nearer (mm) to one of
    ``negatives`` than to every one of ``positives`` (array indices (z, y, x))."""

    def distance(points: list[Index]) -> np.ndarray:
        grid = np.ogrid[tuple(slice(0, n) for n in shape)]
        best = np.full(tuple(shape), np.inf)
        for q in points:
            d2 = sum(((g + o - c) * s) ** 2 for g, o, c, s in zip(grid, origin, q, spacing_zyx, strict=True))
            best = np.minimum(best, d2)
        return best

    return distance(negatives) < distance(positives)


def correct(
    suv_zyx: np.ndarray,
    state: ReaderRegion,
    current_zyx: np.ndarray,
    click_zyx: Sequence[float],
    positive: bool,
    spacing_zyx: Sequence[float],
    policy: ClickPolicy,
) -> tuple[ReaderRegion, np.ndarray] | None:
    """A correction click at array index ``click_zyx`` on the bool (z, y, x) mask ``current_zyx`` of a target in
    this mode: (new state, new bool (z, y, x) mask), or None when the region cannot follow the click (module
    docstring). ``policy``: ``reader_max_growth``, ``reader_cut_ratio``, and ``correction_reach`` (a positive click
    adds nothing farther from it than that many times its distance to the mask, ``click_policy.within_reach``)."""
    voxel_zyx = R.seed_index(click_zyx, suv_zyx.shape)
    if positive:
        clicked = float(suv_zyx[voxel_zyx])
        if clicked <= 0.0:
            return None
        new = replace(state, fraction=min(state.fraction, clicked / state.peak * (1.0 - 1e-6)))
        new = replace(new, positives=new.positives + (voxel_zyx,))
        out = region(suv_zyx, new, spacing_zyx, policy.reader_cut_ratio) | current_zyx
        if policy.correction_reach is not None and current_zyx.any():
            out = current_zyx | (out & within_reach(current_zyx, np.array([voxel_zyx]), [1], policy.correction_reach))
        if not out[voxel_zyx] or out.sum() > policy.reader_max_growth * max(int(current_zyx.sum()), 1):
            return None
        return new, out
    new = replace(state, negatives=state.negatives + (voxel_zyx,))
    out = region(suv_zyx, new, spacing_zyx, policy.reader_cut_ratio) & current_zyx
    if out[voxel_zyx] or not out.any():
        return None
    return new, out
