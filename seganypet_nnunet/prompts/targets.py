"""Prompt targets for training: which structure a simulated prompt asks for.

From an integer label patch: each class, each connected component (instance) of the lesion label, and now and then a
union of two targets or a sub-region (one component, or the half of a structure cut by a random plane), so the
decoder learns "the structure under the click" rather than class names. Arrays may have any axis order; masks keep
the shape and axis order of the label patch. Connected components use 26-connectivity (cc3d).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Sequence

import cc3d
import numpy as np

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


def _as_3d_bool(arr: np.ndarray, name: str) -> np.ndarray:
    arr = np.asarray(arr)
    if arr.ndim != 3:
        raise ValueError(f"{name} must be a 3D array, got shape {arr.shape}")
    return _bool_only(arr, name)


def _bool_only(arr: np.ndarray, name: str) -> np.ndarray:
    if np.issubdtype(arr.dtype, np.floating):
        raise ValueError(f"{name} must be bool or integer 0/1, got {arr.dtype} (threshold logits first)")
    return arr.astype(bool, copy=False)


def _check_fraction(value: float, name: str) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], got {value}")


def _components(mask_or_labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, list]:
    """cc3d labelling: (labels, voxel_counts incl. background at 0, bounding boxes incl. background at 0)."""
    labels = cc3d.connected_components(mask_or_labels, connectivity=_CONNECTIVITY)
    stats = cc3d.statistics(labels)
    return labels, np.asarray(stats["voxel_counts"]), list(stats["bounding_boxes"])


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
