"""What a click means on PET, applied by the session around the network (docs/DESIGN.md, "Clicks on PET").

Four rules, each switchable in ``ClickPolicy`` (measured one by one in ``bench/bench_click_policy.py``):

- PET prior: the first positive click of a target on a HOT spot (local SUVmax >= ``prior_min_suvmax`` within 15 mm)
  starts from the reader's region (SUV >= ``prior_fraction`` x local SUVmax grown from the hottest voxel,
  ``prompts/pet_regions.py``) as the decoder's mask prompt, when the click lies in that region (holes filled, grown by
  one voxel) and the region is at most ``prior_max_ml``; the network then refines it. With ``prior_answer`` the
  region itself is the first click's answer when it is a well-delineated hot focus (mean SUV >= ``prior_contrast`` x
  the mean of its 2-voxel shell: a bladder, a brain, a lesion in soft tissue; >= ``prior_contrast_in_region`` x when
  the click lies in the region itself: a lesion in warm tissue) or when the network's refined answer
  agrees with it (Dice >= ``prior_agreement``) — except a focus that is under ``prior_min_share`` of that answer whose
  rest is warm (mean SUV >= ``prior_warm_suv``): a hot spot inside a kidney, where the network answers with the
  kidney (20-50x the spot); otherwise the network's answer stands.
- Reader corrections (``reader_corrections``, ``reader_region.py``): on a target the reader's region answered where
  the network's first answer agreed with it less than ``reader_max_agreement`` (Dice; the network does not know this
  target: a lesion, not a brain), a correction moves the threshold (positive click) or cuts the region at the SUV
  valley (negative click) instead of going through the network; a click the region cannot follow goes to the
  network.
- Click consistency: a clicked voxel keeps its clicked label, and (``clicked_components_only``) the target keeps only
  the connected components that hold one of its positive clicks (a new positive click elsewhere adds its component).
- Local corrections: a correction click changes the mask only in the connected regions of change that hold one of that
  step's clicks or touch the voxels next to it (``LOCAL_RADIUS``); changes elsewhere are reverted, so a correction
  cannot damage distant parts of the mask. A positive correction may only add voxels, a negative one only remove
  voxels. The clicked voxel takes its clicked label first, so a click the network ignored still changes its own
  voxel. With ``correction_reach`` = f, a correction also changes nothing farther from its click than f x the click's
  distance to the mask's other side (a positive click: to the nearest mask voxel; a negative one: to the nearest
  background voxel; Euclidean, voxels, at least 1): a click in the middle of a missed region of radius r grows the
  mask by at most f x r around it, not into the neighbouring organ.

Space: the logit buffers are the session's preprocessed voxel space, axes (P0, P1, P2); points are (N, 3) preprocessed
voxel coordinates (voxel centre at integer). The SUV for the prior is the ORIGINAL image, array (z, y, x).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import cc3d
import numpy as np
from scipy import ndimage

from seganypet_nnunet.prompts import pet_regions as R

CONNECTIVITY = 26
#: a change region counts as the click's when it comes within this many voxels (Chebyshev) of the clicked voxel
LOCAL_RADIUS = 1


@dataclass(frozen=True)
class ClickPolicy:
    """Switches and thresholds of the rules above (defaults: all on)."""

    pet_prior: bool = True
    prior_fraction: float = 0.41
    prior_min_suvmax: float = 4.0
    prior_max_ml: float = 1500.0
    prior_answer: bool = True
    prior_contrast: float = 7.0
    prior_agreement: float = 0.5
    prior_min_share: float = 0.1
    prior_warm_suv: float = 1.5
    prior_contrast_in_region: float = 5.0
    keep_clicked_label: bool = True
    clicked_components_only: bool = True
    local_corrections: bool = True
    correction_reach: float | None = 2.0
    reader_corrections: bool = True
    reader_max_agreement: float = 0.8
    reader_max_growth: float = 3.0
    reader_cut_ratio: float = 1.2

    @classmethod
    def off(cls) -> ClickPolicy:
        """The bare network: every rule off."""
        return cls(
            pet_prior=False,
            reader_corrections=False,
            keep_clicked_label=False,
            clicked_components_only=False,
            local_corrections=False,
        )


DEFAULT_POLICY = ClickPolicy()


def pet_prior(
    suv_zyx: np.ndarray, seed_zyx: Sequence[float], spacing_zyx: Sequence[float], policy: ClickPolicy
) -> np.ndarray | None:
    """The reader's region for a first positive click at array index ``seed_zyx`` (z, y, x), or None when the gate
    (hot spot, click in the region, volume cap) says the click is not on a hot target. Bool (z, y, x)."""
    peak = R.local_max(suv_zyx, seed_zyx, spacing_zyx)
    if peak.value < policy.prior_min_suvmax:
        return None
    region = R.grow(suv_zyx >= policy.prior_fraction * peak.value, peak.index)
    if region.sum() * float(np.prod(spacing_zyx)) / 1000.0 > policy.prior_max_ml:
        return None
    box, seed = R.region_box(region, 1), R.seed_index(seed_zyx, suv_zyx.shape)  # exact: a 1-voxel margin suffices
    if not all(sl.start <= c < sl.stop for sl, c in zip(box, seed, strict=True)):
        return None
    near = ndimage.binary_dilation(ndimage.binary_fill_holes(region[box]), np.ones((3, 3, 3), bool))
    return region if near[tuple(c - sl.start for sl, c in zip(box, seed, strict=True))] else None


def is_focus(suv_zyx: np.ndarray, region_zyx: np.ndarray, seed_zyx: Sequence[float], policy: ClickPolicy) -> bool:
    """Is the bool (z, y, x) region a well-delineated hot focus: ``R.contrast`` >= ``policy.prior_contrast``, or >=
    ``policy.prior_contrast_in_region`` when the click (array index ``seed_zyx``) lies in the region itself (on the
    hot spot, not next to it: a lesion in warm tissue, not a click on an organ beside a hot spot)?"""
    contrast = R.contrast(suv_zyx, region_zyx)
    if contrast >= policy.prior_contrast:
        return True
    return contrast >= policy.prior_contrast_in_region and bool(region_zyx[R.seed_index(seed_zyx, suv_zyx.shape)])


def prior_is_answer(
    prior_zyx: np.ndarray, answer_zyx: np.ndarray, suv_zyx: np.ndarray, focal: bool, policy: ClickPolicy
) -> bool:
    """Is the reader's region (bool ``prior_zyx``) the first answer instead of the network's (bool ``answer_zyx``)?
    All three arrays are the original image, (z, y, x). Yes when they agree (Dice >= ``prior_agreement``), or when the
    region is a focus (``is_focus``) unless it is a speck of a warm structure the network answered with: under
    ``prior_min_share`` of the answer, and the rest of the answer at mean SUV >= ``prior_warm_suv`` (a hot spot in a
    kidney; a small lesion in soft tissue, whose over-grown answer is background, stays the region)."""
    if agreement(prior_zyx, answer_zyx) >= policy.prior_agreement:
        return True
    if not focal:
        return False
    size = int(answer_zyx.sum())
    if size == 0 or int((prior_zyx & answer_zyx).sum()) / size >= policy.prior_min_share:
        return True
    return float(suv_zyx[answer_zyx & ~prior_zyx].mean()) < policy.prior_warm_suv


def agreement(a: np.ndarray, b: np.ndarray) -> float:
    """Dice of two bool masks of one shape (1.0 when both are empty)."""
    total = int(a.sum()) + int(b.sum())
    return 1.0 if total == 0 else 2.0 * int((a & b).sum()) / total


def _voxels(points: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """(N, 3) int indices: points rounded and clipped into ``shape`` (preprocessed voxel space)."""
    pts = np.rint(np.asarray(points, float).reshape(-1, 3)).astype(int)
    return np.clip(pts, 0, np.asarray(shape) - 1)


def keep_local_changes(
    before: np.ndarray,
    after: np.ndarray,
    step_points: np.ndarray,
    region: tuple[slice, ...],
    step_labels: Sequence[int] = (),
    reach: float | None = None,
) -> np.ndarray:
    """``after`` with every sign change (26-connected component of ``(before > 0) != (after > 0)``) that comes within
    ``LOCAL_RADIUS`` voxels of none of ``step_points`` reverted to ``before``; only inside ``region`` (slices of the
    buffers). A step of positive clicks only may only ADD voxels, one of negative clicks only may only REMOVE voxels
    (``step_labels``, 1/0 per point; empty: both). With ``reach`` (and ``step_labels``) changes farther (Euclidean,
    voxels) from every click than ``reach`` x its distance to the other side of ``before`` are reverted too (module
    docstring). Returns a new array."""
    out = after.copy()
    changed = (before[region] > 0) != (after[region] > 0)
    labels_set = set(int(v) for v in step_labels)
    if labels_set == {1}:
        changed &= after[region] > 0  # additions only
    elif labels_set == {0}:
        changed &= before[region] > 0  # removals only
    revert_all = ((before[region] > 0) != (after[region] > 0)) & ~changed
    if not changed.any():
        out[region][revert_all] = before[region][revert_all]
        return out
    labels = cc3d.connected_components(changed, connectivity=CONNECTIVITY)
    origin = np.array([s.start for s in region])
    keep: set[int] = set()
    for p in _voxels(step_points, before.shape) - origin:
        near = tuple(slice(max(0, c - LOCAL_RADIUS), max(0, c + LOCAL_RADIUS + 1)) for c in p)
        keep |= set(np.unique(labels[near]).tolist())
    keep -= {0}
    revert = (changed & ~np.isin(labels, list(keep))) | revert_all
    if reach is not None and len(step_labels) == len(step_points):
        revert |= changed & ~within_reach(
            before[region] > 0, _voxels(step_points, before.shape) - origin, step_labels, reach
        )
    out[region][revert] = before[region][revert]
    return out


def within_reach(inside: np.ndarray, points: np.ndarray, labels: Sequence[int], reach: float) -> np.ndarray:
    """Bool mask of ``inside``'s shape: voxels within reach of one of ``points`` (int (N, 3) indices into it); a point
    reaches ``reach`` x its Euclidean distance (voxels) to the nearest voxel on the other side of ``inside`` (positive
    label: an inside voxel; negative: an outside one), at least 1 voxel; the reach is a Euclidean ball."""
    out = np.zeros(inside.shape, bool)
    for side in (1, 0):
        pts = [p for p, lab in zip(points, labels, strict=True) if int(lab) == side]
        other = inside if side else ~inside
        if not pts:
            continue
        if not other.any():
            return np.ones(inside.shape, bool)  # nothing on the other side in the region: no bound
        for p in pts:  # a point outside the region takes the distance of the nearest region voxel
            r = max(1.0, reach * _distance_to(other, np.clip(p, 0, np.array(inside.shape) - 1)))
            lo, hi = np.clip(p - int(r), 0, inside.shape), np.clip(p + int(r) + 1, 0, inside.shape)
            box = tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))
            if any(b.start >= b.stop for b in box):
                continue
            grid = np.ogrid[box]
            out[box] |= sum((g - c) ** 2 for g, c in zip(grid, p, strict=True)) <= r * r
    return out


def _distance_to(mask: np.ndarray, q: np.ndarray) -> float:
    """Euclidean distance (voxels) from index ``q`` to the nearest True voxel of a non-empty bool ``mask``: searched in
    growing boxes around ``q`` (exact: every voxel outside a box of half-width k is farther than k)."""
    k = 1
    while True:
        lo, hi = np.maximum(q - k, 0), np.minimum(q + k + 1, mask.shape)
        found = np.argwhere(mask[tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))])
        if found.size:
            d = float(np.sqrt(((found + lo - q) ** 2).sum(1).min()))
            if d <= k:
                return d
            k = int(np.ceil(d))  # the nearest voxel may lie outside this box but not beyond d
        else:
            k *= 2


def enforce_clicks(
    logits: np.ndarray,
    points: Sequence[tuple[np.ndarray, int]],
    policy: ClickPolicy,
    regions: Sequence[tuple[slice, ...]],
) -> None:
    """In place: clicked voxels keep their label; with ``clicked_components_only`` foreground components without a
    positive click are set to background (logit ``-|logit|``, at most -1) inside ``regions`` (the components are
    labelled once over the whole buffer)."""
    if not points:
        return
    shape = logits.shape
    if policy.keep_clicked_label:
        for p, label in points:
            v = tuple(_voxels(p, shape)[0])
            logits[v] = max(float(logits[v]), 1.0) if label else min(float(logits[v]), -1.0)
    positives = [p for p, label in points if label]
    if policy.clicked_components_only and positives:
        labels = cc3d.connected_components(logits > 0, connectivity=CONNECTIVITY)
        keep = list({int(labels[tuple(v)]) for v in _voxels(np.array(positives), shape)} - {0})
        for region in regions:
            drop = (labels[region] > 0) & ~np.isin(labels[region], keep)
            logits[region][drop] = np.minimum(-np.abs(logits[region][drop]), -1.0)
