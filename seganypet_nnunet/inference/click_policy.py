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

from seganypet_nnunet.prompts import pet_regions as R

CONNECTIVITY = 26
#: a change region counts as the click's when it comes within this many voxels (Chebyshev) of the clicked voxel
LOCAL_RADIUS = 1


@dataclass(frozen=True)
class ClickPolicy:
    """Switches and thresholds of the rules above (defaults: all on)."""

    pet_prior: bool = True
    prior_fraction: float = R.PRIOR_FRACTION
    prior_min_suvmax: float = R.PRIOR_MIN_SUVMAX
    prior_max_ml: float = R.PRIOR_MAX_ML
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
    return R.prior_region(
        suv_zyx,
        seed_zyx,
        spacing_zyx,
        fraction=policy.prior_fraction,
        min_suvmax=policy.prior_min_suvmax,
        max_ml=policy.prior_max_ml,
    )


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


def _voxels(points_pre: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """(N, 3) int preprocessed voxel indices: ``points_pre`` rounded and clipped into ``shape``."""
    voxels_pre = np.rint(np.asarray(points_pre, float).reshape(-1, 3)).astype(int)
    return np.clip(voxels_pre, 0, np.asarray(shape) - 1)


def keep_local_changes(
    before: np.ndarray,
    after: np.ndarray,
    step_points_pre: np.ndarray,
    region: tuple[slice, ...],
    step_labels: Sequence[int] = (),
    reach: float | None = None,
) -> np.ndarray:
    """``after`` with every sign change (26-connected component of ``(before > 0) != (after > 0)``) that comes within
    ``LOCAL_RADIUS`` voxels of none of ``step_points_pre`` ((N, 3) preprocessed voxel) reverted to ``before``; only
    inside ``region`` (slices of the buffers). A step of positive clicks only may only ADD voxels, one of negative
    clicks only may only REMOVE voxels (``step_labels``, 1/0 per point; empty: both). With ``reach`` (and
    ``step_labels``) changes farther (Euclidean, voxels) from every click than ``reach`` x its distance to the other
    side of ``before`` are reverted too (module docstring). Returns a new array."""
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
    for voxel_in_region in _voxels(step_points_pre, before.shape) - origin:
        near = tuple(slice(max(0, c - LOCAL_RADIUS), max(0, c + LOCAL_RADIUS + 1)) for c in voxel_in_region)
        keep |= set(np.unique(labels[near]).tolist())
    keep -= {0}
    revert = (changed & ~np.isin(labels, list(keep))) | revert_all
    if reach is not None and len(step_labels) == len(step_points_pre):
        revert |= changed & ~within_reach(
            before[region] > 0, _voxels(step_points_pre, before.shape) - origin, step_labels, reach
        )
    out[region][revert] = before[region][revert]
    return out


def within_reach(inside: np.ndarray, voxels: np.ndarray, labels: Sequence[int], reach: float) -> np.ndarray:
    """Bool mask of ``inside``'s shape: voxels within reach of one of ``voxels`` (int (N, 3) indices into ``inside``,
    in its space: preprocessed voxels of a region, or array (z, y, x) for ``reader_region``); a point
    reaches ``reach`` x its Euclidean distance (voxels) to the nearest voxel on the other side of ``inside`` (positive
    label: an inside voxel; negative: an outside one), at least 1 voxel; the reach is a Euclidean ball."""
    out = np.zeros(inside.shape, bool)
    for side in (1, 0):
        side_voxels = [v for v, lab in zip(voxels, labels, strict=True) if int(lab) == side]
        other = inside if side else ~inside
        if not side_voxels:
            continue
        if not other.any():
            return np.ones(inside.shape, bool)  # nothing on the other side in the region: no bound
        for v in side_voxels:  # a voxel outside the region takes the distance of the nearest region voxel
            r = max(1.0, reach * _distance_to(other, np.clip(v, 0, np.array(inside.shape) - 1)))
            lo, hi = np.clip(v - int(r), 0, inside.shape), np.clip(v + int(r) + 1, 0, inside.shape)
            box = tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))
            if any(b.start >= b.stop for b in box):
                continue
            grid = np.ogrid[box]
            out[box] |= sum((g - c) ** 2 for g, c in zip(grid, v, strict=True)) <= r * r
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
    points_pre: Sequence[tuple[np.ndarray, int]],
    policy: ClickPolicy,
    regions: Sequence[tuple[slice, ...]],
) -> None:
    """In place: clicked voxels (``points_pre``: [(preprocessed voxel (3,), label 1/0)]) keep their label; with
    ``clicked_components_only`` foreground components without a positive click are set to background (logit
    ``-|logit|``, at most -1) inside ``regions`` (the components are labelled once over the whole buffer)."""
    if not points_pre:
        return
    shape = logits.shape
    if policy.keep_clicked_label:
        for point_pre, label in points_pre:
            v = tuple(_voxels(point_pre, shape)[0])
            logits[v] = max(float(logits[v]), 1.0) if label else min(float(logits[v]), -1.0)
    positives_pre = [point_pre for point_pre, label in points_pre if label]
    if policy.clicked_components_only and positives_pre:
        labels = cc3d.connected_components(logits > 0, connectivity=CONNECTIVITY)
        keep = list({int(labels[tuple(v)]) for v in _voxels(np.array(positives_pre), shape)} - {0})
        for region in regions:
            drop = (labels[region] > 0) & ~np.isin(labels[region], keep)
            logits[region][drop] = np.minimum(-np.abs(logits[region][drop]), -1.0)


def apply_to_step(
    logits: np.ndarray,
    logits_before: np.ndarray | None,
    step_points_pre: Sequence[tuple[np.ndarray, int]],
    target_points_pre: Sequence[tuple[np.ndarray, int]],
    crops_pre: Sequence[tuple[tuple[int, int], ...]],
    policy: ClickPolicy,
) -> np.ndarray:
    """The rules after one network step of a target, inside the crops it ran (``crops_pre``: half-open boxes).

    With ``logits_before`` (the buffer before the step; None: no local corrections) the step's clicks
    ``step_points_pre`` first take their label, then ``keep_local_changes`` inside the crops' bounding box; then
    ``enforce_clicks`` with all the target's clicks ``target_points_pre``. Clicks: [(preprocessed voxel (3,),
    label 1/0)]; buffers: (P0, P1, P2) preprocessed voxel space. Returns the buffer (``logits`` itself, changed in
    place, when there are no local corrections).
    """
    if logits_before is not None:
        bbox = tuple(slice(min(b[a][0] for b in crops_pre), max(b[a][1] for b in crops_pre)) for a in range(3))
        enforce_clicks(logits, step_points_pre, ClickPolicy(clicked_components_only=False), [bbox])  # the click first
        step_array_pre = np.array([point_pre for point_pre, _ in step_points_pre])
        labels = [label for _, label in step_points_pre]
        logits = keep_local_changes(logits_before, logits, step_array_pre, bbox, labels, policy.correction_reach)
    enforce_clicks(logits, target_points_pre, policy, [tuple(slice(a, b) for a, b in crop) for crop in crops_pre])
    return logits
