"""Click simulation for training and evaluation: first clicks, boxes and correction clicks (targets: targets.py).

All functions work on ONE 3D sample at a time (numpy) except the thin ``*_batch`` helpers. Arrays may have any axis
order; every coordinate taken or returned is a voxel index (voxel centre at integer) in the axis order of the array it
refers to. The trainer calls these in network-input voxel space, the evaluator in preprocessed voxel space.

Clicks are placed in the interior of a region using a Euclidean distance transform (EDT) computed on the bounding-box
crop of one connected component, padded by one background voxel so the array border counts as region border.
Connected components use 26-connectivity (cc3d).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy import ndimage

from seganypet_nnunet.prompts.targets import Target, _as_3d_bool, _bool_only, _check_fraction, _components


@dataclass(frozen=True, eq=False)
class Click:
    """One click.

    Attributes:
        coord: float64 array (3,), voxel indices in the axis order of the array the click was computed on.
        positive: True for a foreground (include) click, False for a background (exclude) click.
    """

    coord: np.ndarray
    positive: bool


def _mask_of(target: Target | np.ndarray) -> np.ndarray:
    return target.mask if isinstance(target, Target) else _as_3d_bool(target, "target")


def _crop_edt(region: np.ndarray, spacing: Sequence[float] | None) -> np.ndarray:
    """EDT inside ``region`` (3D bool crop) to the nearest non-region voxel; outside the crop counts as non-region."""
    padded = np.pad(region, 1, constant_values=False)
    dist = ndimage.distance_transform_edt(padded, sampling=spacing)
    return dist[1:-1, 1:-1, 1:-1]


def _innermost(dist: np.ndarray) -> np.ndarray:
    """Index (3,) of the EDT maximum of ``dist``; ties go to the tied voxel nearest their centroid, then C order."""
    tied = np.argwhere(dist == dist.max())
    if len(tied) == 1:
        return tied[0]
    d2 = ((tied - tied.mean(axis=0)) ** 2).sum(axis=1)
    return tied[int(np.argmin(d2))]  # argmin returns the first (C-order) of equal values


def _random_interior(dist: np.ndarray, rng: np.random.Generator, interior_fraction: float) -> np.ndarray:
    """Random index (3,) among voxels with EDT >= interior_fraction * max EDT (and > 0)."""
    threshold = max(interior_fraction * float(dist.max()), np.finfo(float).tiny)
    candidates = np.argwhere(dist >= threshold)
    return candidates[rng.integers(len(candidates))]


def _component_click(
    labels: np.ndarray,
    label_id: int,
    bbox: tuple[slice, slice, slice],
    rng: np.random.Generator | None,
    spacing: Sequence[float] | None,
    interior_fraction: float,
) -> np.ndarray:
    """Click (3,) float64 in the interior of component ``label_id`` of ``labels``, array voxel indices."""
    crop = labels[bbox] == label_id
    dist = _crop_edt(crop, spacing)
    local = _innermost(dist) if rng is None else _random_interior(dist, rng, interior_fraction)
    offset = np.array([s.start for s in bbox])
    return (local + offset).astype(np.float64)


def first_click(
    target: Target | np.ndarray,
    rng: np.random.Generator | None = None,
    *,
    spacing: Sequence[float] | None = None,
    interior_fraction: float = 0.5,
) -> tuple[np.ndarray, bool]:
    """First (positive) click inside a target.

    Args:
        target: Target, or a 3D bool mask.
        rng: None → deterministic: the interior-most voxel (EDT argmax, ties to the tied voxel nearest the tied set's
            centroid, then C order) of the target's largest 26-connected component (ties: first in raster order).
            Given → a random voxel of the whole target whose EDT is >= ``interior_fraction`` × the max EDT.
        spacing: Voxel size per axis (axis order of the mask) for the EDT; None = isotropic 1.
        interior_fraction: Interior threshold for random clicks, in [0, 1].

    Returns:
        (coord, True): coord float64 (3,) voxel indices in the axis order of the mask.

    Raises:
        ValueError: Empty target or bad arguments.
    """
    mask = _mask_of(target)
    _check_fraction(interior_fraction, "interior_fraction")
    if not mask.any():
        raise ValueError("first_click: target mask is empty")
    if rng is None:
        labels, counts, boxes = _components(mask)
        biggest = int(np.argmax(counts[1:])) + 1
        return _component_click(labels, biggest, boxes[biggest], None, spacing, interior_fraction), True
    bbox = ndimage.find_objects(mask.astype(np.uint8))[0]
    local = _random_interior(_crop_edt(mask[bbox], spacing), rng, interior_fraction)
    return (local + np.array([s.start for s in bbox])).astype(np.float64), True


def jittered_box(
    target: Target | np.ndarray,
    rng: np.random.Generator | None = None,
    *,
    jitter_fraction: float = 0.1,
    shape: Sequence[int] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Bounding-box prompt of a target, optionally with each face moved at random.

    Each face moves by an integer drawn uniformly from [-j, j] with j = round(jitter_fraction × extent) on that axis
    (extent = tight box side in voxels), then the box is clipped to ``[0, shape - 1]`` (min <= max kept).

    Args:
        target: Target, or a 3D bool mask.
        rng: None → the tight box.
        jitter_fraction: >= 0.
        shape: Array shape to clip to (axis order of the mask); None = the mask's shape.

    Returns:
        (min_corner, max_corner): float64 (3,) each, inclusive voxel-centre indices in the axis order of the mask.

    Raises:
        ValueError: Empty target, negative jitter or a shape of the wrong length.
    """
    mask = _mask_of(target)
    if not mask.any():
        raise ValueError("jittered_box: target mask is empty")
    if jitter_fraction < 0:
        raise ValueError(f"jittered_box: jitter_fraction must be >= 0, got {jitter_fraction}")
    limit = np.asarray(mask.shape if shape is None else shape, dtype=np.int64)
    if limit.shape != (3,):
        raise ValueError(f"jittered_box: shape must have 3 entries, got {tuple(limit)}")
    bbox = ndimage.find_objects(mask.astype(np.uint8))[0]
    lo = np.array([s.start for s in bbox], dtype=np.int64)
    hi = np.array([s.stop - 1 for s in bbox], dtype=np.int64)
    if rng is not None:
        j = np.round(jitter_fraction * (hi - lo + 1)).astype(np.int64)
        lo = lo + rng.integers(-j, j + 1)
        hi = hi + rng.integers(-j, j + 1)
    lo, hi = np.clip(lo, 0, limit - 1), np.clip(hi, 0, limit - 1)
    return np.minimum(lo, hi).astype(np.float64), np.maximum(lo, hi).astype(np.float64)


def next_click(
    pred: np.ndarray,
    target: Target | np.ndarray,
    rng: np.random.Generator | None = None,
    *,
    spacing: Sequence[float] | None = None,
    interior_fraction: float = 0.5,
) -> Click | None:
    """Correction click on the error of ``pred`` against ``target``.

    Errors are FN = target & ~pred and FP = pred & ~target, labelled as separate 26-connected components (an FN
    component never merges with a touching FP one).

    Args:
        pred: 3D bool prediction, same shape and axis order as the target mask.
        target: Target, or a 3D bool reference mask.
        rng: None → deterministic evaluation protocol: the largest error component by voxel count (ties: first in
            cc3d raster order), clicked at its interior-most voxel (EDT with ``spacing``). Given → a component drawn
            with probability ∝ its size, clicked at a random voxel with EDT >= ``interior_fraction`` × its max EDT.
        spacing: Voxel size per axis (axis order of the arrays) for the EDT; None = isotropic 1.
        interior_fraction: Interior threshold for random clicks, in [0, 1].

    Returns:
        Click (coord = voxel indices in the arrays' axis order; positive iff the component is FN), or None if
        pred equals the target.

    Raises:
        ValueError: Shapes differ or arrays are not 3D.
    """
    pred = _as_3d_bool(pred, "pred")
    ref = _mask_of(target)
    if pred.shape != ref.shape:
        raise ValueError(f"next_click: pred shape {pred.shape} != target shape {ref.shape}")
    _check_fraction(interior_fraction, "interior_fraction")
    kind = np.zeros(ref.shape, dtype=np.uint8)
    kind[ref & ~pred] = 1  # FN
    kind[pred & ~ref] = 2  # FP
    if not kind.any():
        return None
    labels, counts, boxes = _components(kind)
    sizes = counts[1:].astype(np.float64)
    if rng is None:
        chosen = int(np.argmax(sizes)) + 1
    else:
        chosen = int(rng.choice(len(sizes), p=sizes / sizes.sum())) + 1
    coord = _component_click(labels, chosen, boxes[chosen], rng, spacing, interior_fraction)
    positive = bool(kind[tuple(coord.astype(np.int64))] == 1)
    return Click(coord=coord, positive=positive)


def next_clicks_batch(
    preds: np.ndarray,
    targets: np.ndarray,
    rng: np.random.Generator | None = None,
    *,
    spacing: Sequence[float] | None = None,
    interior_fraction: float = 0.5,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``next_click`` for each sample of a batch.

    Args:
        preds: Bool (B, P0, P1, P2) predictions (or (B, 1, P0, P1, P2)), any spatial axis order.
        targets: Bool reference masks, same shape as ``preds``.
        rng: See ``next_click``.
        spacing: See ``next_click`` (spatial axis order of the arrays).
        interior_fraction: See ``next_click``.

    Returns:
        coords float64 (B, 3) voxel indices in the spatial axis order of the arrays (0 where no click),
        labels int64 (B,) 1 positive / 0 negative / -1 no click (Prompts padding), has_click bool (B,).

    Raises:
        ValueError: Shapes differ or are not (B, 3D) / (B, 1, 3D).
    """
    preds, targets = _batch_spatial(preds, "preds"), _batch_spatial(targets, "targets")
    if preds.shape != targets.shape:
        raise ValueError(f"next_clicks_batch: preds shape {preds.shape} != targets shape {targets.shape}")
    n = preds.shape[0]
    coords, labels, has = np.zeros((n, 3)), np.full(n, -1, dtype=np.int64), np.zeros(n, dtype=bool)
    for b in range(n):
        click = next_click(preds[b], targets[b], rng, spacing=spacing, interior_fraction=interior_fraction)
        if click is not None:
            coords[b], labels[b], has[b] = click.coord, int(click.positive), True
    return coords, labels, has


def first_clicks_batch(
    targets: np.ndarray, rng: np.random.Generator | None = None, *, interior_fraction: float = 0.5
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``first_click`` for each sample of a batch; empty targets get no click.

    Args:
        targets: Bool (B, P0, P1, P2) or (B, 1, P0, P1, P2) masks, any spatial axis order.
        rng: See ``first_click``.
        interior_fraction: See ``first_click``.

    Returns:
        coords float64 (B, 3) voxel indices in the spatial axis order of the arrays, labels int64 (B,) 1 / -1,
        has_click bool (B,).
    """
    targets = _batch_spatial(targets, "targets")
    n = targets.shape[0]
    coords, labels, has = np.zeros((n, 3)), np.full(n, -1, dtype=np.int64), np.zeros(n, dtype=bool)
    for b in range(n):
        if targets[b].any():
            coords[b], _ = first_click(targets[b], rng, interior_fraction=interior_fraction)
            labels[b], has[b] = 1, True
    return coords, labels, has


def _batch_spatial(arr: np.ndarray, name: str) -> np.ndarray:
    arr = np.asarray(arr)
    if arr.ndim == 5 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 4:
        raise ValueError(f"{name} must have shape (B, P0, P1, P2) or (B, 1, P0, P1, P2), got {arr.shape}")
    return _bool_only(arr, name)
