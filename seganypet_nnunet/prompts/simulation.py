"""Prompt simulation for training and evaluation: targets, first clicks, boxes and correction clicks.

All functions work on ONE 3D sample at a time (numpy) except the thin ``*_batch`` helpers. Arrays may have any axis
order; every coordinate taken or returned is a voxel index (voxel centre at integer) in the axis order of the array it
refers to. The trainer calls these in network-input voxel space, the evaluator in preprocessed voxel space.

Clicks are placed in the interior of a region using a Euclidean distance transform (EDT) computed on the bounding-box
crop of one connected component, padded by one background voxel so the array border counts as region border.
Connected components use 26-connectivity (cc3d).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Sequence

import cc3d
import numpy as np
from scipy import ndimage

TargetKind = Literal["class", "instance", "union", "subregion"]
_KINDS = ("class", "instance", "union", "subregion")
_CONNECTIVITY = 26


@dataclass(frozen=True, eq=False)
class Target:
    """One segmentation target.

    Attributes:
        name: Human-readable id, e.g. ``"class_3"``, ``"lesion_2"``, ``"union_3+5"``, ``"sub_3"``.
        mask: Bool array, 3D, same shape and axis order as the label patch it came from.
        kind: ``"class"`` | ``"instance"`` | ``"union"`` | ``"subregion"``.
    """

    name: str
    mask: np.ndarray
    kind: TargetKind

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise ValueError(f"Target {self.name!r}: kind must be one of {_KINDS}, got {self.kind!r}")
        if self.mask.ndim != 3 or self.mask.dtype != bool:
            raise ValueError(f"Target {self.name!r}: mask must be 3D bool, got {self.mask.ndim}D {self.mask.dtype}")


@dataclass(frozen=True, eq=False)
class Click:
    """One click.

    Attributes:
        coord: float64 array (3,), voxel indices in the axis order of the array the click was computed on.
        positive: True for a foreground (include) click, False for a background (exclude) click.
    """

    coord: np.ndarray
    positive: bool


def _as_3d_bool(arr: np.ndarray, name: str) -> np.ndarray:
    arr = np.asarray(arr)
    if arr.ndim != 3:
        raise ValueError(f"{name} must be a 3D array, got shape {arr.shape}")
    return _bool_only(arr, name)


def _bool_only(arr: np.ndarray, name: str) -> np.ndarray:
    if np.issubdtype(arr.dtype, np.floating):
        raise ValueError(f"{name} must be bool or integer 0/1, got {arr.dtype} (threshold logits first)")
    return arr.astype(bool, copy=False)


def _mask_of(target: Target | np.ndarray) -> np.ndarray:
    return target.mask if isinstance(target, Target) else _as_3d_bool(target, "target")


def _check_fraction(value: float, name: str) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], got {value}")


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


def _components(mask_or_labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, list]:
    """cc3d labelling: (labels, voxel_counts incl. background at 0, bounding boxes incl. background at 0)."""
    labels = cc3d.connected_components(mask_or_labels, connectivity=_CONNECTIVITY)
    stats = cc3d.statistics(labels)
    return labels, np.asarray(stats["voxel_counts"]), list(stats["bounding_boxes"])


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
        preds: Bool (B, X, Y, Z) predictions (or (B, 1, X, Y, Z)), any spatial axis order.
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
        targets: Bool (B, X, Y, Z) or (B, 1, X, Y, Z) masks, any spatial axis order.
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
        raise ValueError(f"{name} must have shape (B, X, Y, Z) or (B, 1, X, Y, Z), got {arr.shape}")
    return _bool_only(arr, name)


def split_by_plane(mask: np.ndarray, normal: Sequence[float], point: Sequence[float]) -> np.ndarray:
    """Voxels of ``mask`` on the non-negative side of a plane.

    Args:
        mask: 3D bool array.
        normal: (3,) plane normal, in the axis order of ``mask`` (voxel units).
        point: (3,) a point on the plane, voxel indices in the axis order of ``mask``.

    Returns:
        Bool array, shape of ``mask``: ``mask & (dot(x - point, normal) >= 0)`` for voxel centres x.
    """
    mask = _as_3d_bool(mask, "mask")
    n, p = np.asarray(normal, dtype=np.float64), np.asarray(point, dtype=np.float64)
    if n.shape != (3,) or p.shape != (3,) or not np.any(n):
        raise ValueError("split_by_plane: normal and point must be (3,) and normal non-zero")
    idx = np.argwhere(mask)
    keep = (idx - p) @ n >= 0
    out = np.zeros_like(mask)
    out[tuple(idx[keep].T)] = True
    return out


def _subregion(base: Target, rng: np.random.Generator, min_voxels: int) -> Target | None:
    """A component of a multi-component target (half the time) or its half cut by a random plane via its centroid."""
    labels, counts, _ = _components(base.mask)
    big = np.flatnonzero(counts[1:] >= min_voxels) + 1
    if len(big) > 1 and rng.random() < 0.5:
        mask = labels == int(rng.choice(big))
    else:
        centroid = np.argwhere(base.mask).mean(axis=0)
        mask = split_by_plane(base.mask, rng.normal(size=3), centroid)
    if mask.sum() < min_voxels:
        return None
    return Target(name=f"sub_{base.name}", mask=mask, kind="subregion")


def sample_targets(
    seg: np.ndarray,
    rng: np.random.Generator,
    *,
    exclude_labels: Sequence[int] = (),
    lesion_label: int | None = None,
    max_targets: int | None = None,
    p_union: float = 0.1,
    p_subregion: float = 0.1,
    min_voxels: int = 10,
) -> list[Target]:
    """Targets for one training patch.

    Every present foreground label except ``exclude_labels`` gives a ``"class"`` target, except ``lesion_label``,
    whose 26-connected components each give an ``"instance"`` target. Then, with probability ``p_union``, one
    ``"union"`` of two random targets is added, and with probability ``p_subregion`` one ``"subregion"`` of a random
    target (see ``_subregion``). Targets under ``min_voxels`` voxels are skipped. If ``max_targets`` is set, a random
    subset of that size is kept (original order). Deterministic given ``rng``.

    Args:
        seg: Integer label array, 3D, any axis order (0 = background).
        rng: Random generator.
        exclude_labels: Labels that never become targets (held-out classes for zero-shot tests).
        lesion_label: Label split into instances; None = no instance splitting.
        max_targets: Cap on the number of returned targets (>= 1) or None.
        p_union: Probability of adding a union target, in [0, 1].
        p_subregion: Probability of adding a sub-region target, in [0, 1].
        min_voxels: Minimum target size in voxels (>= 1).

    Returns:
        List of Target, masks of the shape and axis order of ``seg``.

    Raises:
        ValueError: Bad arguments.
    """
    seg = np.asarray(seg)
    if seg.ndim != 3 or not np.issubdtype(seg.dtype, np.integer):
        raise ValueError(f"sample_targets: seg must be a 3D integer array, got {seg.ndim}D {seg.dtype}")
    _check_fraction(p_union, "p_union")
    _check_fraction(p_subregion, "p_subregion")
    if min_voxels < 1 or (max_targets is not None and max_targets < 1):
        raise ValueError("sample_targets: min_voxels and max_targets must be >= 1")
    targets = _base_targets(seg, set(int(v) for v in exclude_labels), lesion_label, min_voxels)
    extras: list[Target] = []
    if len(targets) >= 2 and rng.random() < p_union:
        a, b = rng.choice(len(targets), size=2, replace=False)
        ta, tb = targets[int(a)], targets[int(b)]
        extras.append(Target(name=f"union_{ta.name}+{tb.name}", mask=ta.mask | tb.mask, kind="union"))
    if targets and rng.random() < p_subregion:
        sub = _subregion(targets[int(rng.integers(len(targets)))], rng, min_voxels)
        if sub is not None:
            extras.append(sub)
    targets += extras
    if max_targets is not None and len(targets) > max_targets:
        keep = np.sort(rng.permutation(len(targets))[:max_targets])
        targets = [targets[int(i)] for i in keep]
    return targets


def _base_targets(seg: np.ndarray, exclude: set[int], lesion_label: int | None, min_voxels: int) -> list[Target]:
    targets: list[Target] = []
    for value in np.unique(seg):
        value = int(value)
        if value == 0 or value in exclude:
            continue
        mask = seg == value
        if value != lesion_label:
            if mask.sum() >= min_voxels:
                targets.append(Target(name=f"class_{value}", mask=mask, kind="class"))
            continue
        labels, counts, _ = _components(mask)
        for inst in np.flatnonzero(counts[1:] >= min_voxels) + 1:
            targets.append(Target(name=f"lesion_{inst}", mask=labels == inst, kind="instance"))
    return targets
