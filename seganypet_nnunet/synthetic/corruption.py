"""Label corruption for synthetic training cases: the low-quality masks of mixed-quality PET collections.

Real collections mix expert masks with CT-derived organ masks that miss PET boundaries and quick lesion outlines.
``make_dataset(..., corruption=LabelCorruption(fraction=0.5))`` turns that fraction of the TRAINING cases into
low-quality cases (test labels stay clean), each with ONE of these operations, applied to every structure of the
label map (organs in label order, lesions last, so lesions stay on top):

- ``dilate_erode``: dilation (+) or erosion (-) by 1-3 voxels (Euclidean distance in voxels);
- ``shift``: the whole map moved by a few mm (3-8 mm in a random direction, rounded to voxels; misregistration);
- ``missing_part``: each structure loses the part beyond a plane cutting 20-40 % of its extent along a random axis;
- ``boundary_offset``: each boundary moved in or out by a smooth random field of up to 1.5-3 voxels (a CT-derived
  organ mask on PET: right shape, wrong boundary).

Every function works on numpy arrays in their own axis order (for the dataset writer: SimpleITK's (z, y, x)) and in
voxel units unless it says mm.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

KINDS = ("dilate_erode", "shift", "missing_part", "boundary_offset")
CORRUPTION_RECORD_FILE = "label_corruption.json"


@dataclass(frozen=True)
class LabelCorruption:
    """Which training cases get low-quality labels, and how.

    Attributes:
        fraction: share of training cases corrupted (rounded to a count), in [0, 1].
        kinds: operations to draw from, uniformly per case (names in ``KINDS``).
        seed: seed of the case selection and of the per-case parameters.
    """

    fraction: float = 0.5
    kinds: tuple[str, ...] = KINDS
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.fraction <= 1:
            raise ValueError(f"LabelCorruption.fraction must be in [0, 1], got {self.fraction}")
        unknown = [k for k in self.kinds if k not in KINDS]
        if unknown or not self.kinds:
            raise ValueError(f"LabelCorruption.kinds must be a non-empty subset of {KINDS}, got {self.kinds}")

    def select(self, case_ids: Sequence[str]) -> list[str]:
        """The corrupted cases among ``case_ids`` (deterministic for the seed), sorted."""
        count = int(round(self.fraction * len(case_ids)))
        rng = np.random.default_rng([self.seed, 7919])
        return sorted(str(c) for c in rng.choice(sorted(case_ids), size=count, replace=False))


def dilate_erode(mask: np.ndarray, *, voxels: int) -> np.ndarray:
    """``mask`` grown (``voxels`` > 0) or shrunk (< 0) by ``|voxels|`` voxels of Euclidean distance."""
    mask = mask.astype(bool)
    if voxels >= 0:
        return ndimage.distance_transform_edt(~mask) <= voxels if mask.any() else mask.copy()
    return ndimage.distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1, 1:-1] > -voxels


def shift(mask: np.ndarray, *, offset: Sequence[int]) -> np.ndarray:
    """``mask`` moved by integer ``offset`` voxels per axis (array axis order); what leaves the grid is lost."""
    out = np.zeros_like(mask)
    src, dst = [], []
    for d, n in zip(offset, mask.shape, strict=True):
        d = int(d)
        src.append(slice(max(0, -d), min(n, n - d)))
        dst.append(slice(max(0, d), min(n, n + d)))
    out[tuple(dst)] = mask[tuple(src)]
    return out


def remove_part(mask: np.ndarray, *, axis: int, fraction: float, from_high: bool) -> np.ndarray:
    """``mask`` without the slab that holds ``fraction`` of its extent along ``axis`` (array axis order), cut at the
    high-index end if ``from_high`` else at the low end. An empty mask is returned unchanged."""
    mask = mask.astype(bool)
    idx = np.flatnonzero(mask.any(axis=tuple(a for a in range(mask.ndim) if a != axis)))
    if idx.size == 0:
        return mask.copy()
    lo, hi = int(idx[0]), int(idx[-1]) + 1
    cut = int(round(fraction * (hi - lo)))
    out = mask.copy()
    view = [slice(None)] * mask.ndim
    view[axis] = slice(hi - cut, hi) if from_high else slice(lo, lo + cut)
    out[tuple(view)] = False
    return out


def signed_distance(mask: np.ndarray) -> np.ndarray:
    """Voxel distance to the boundary, taken half-way between voxels: >= 0.5 outside ``mask``, <= -0.5 inside."""
    mask = mask.astype(bool)
    inside = ndimage.distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1, 1:-1]
    outside = ndimage.distance_transform_edt(~mask) if mask.any() else np.full(mask.shape, np.inf)
    return np.where(mask, 0.5 - inside, outside - 0.5)


def boundary_offset(mask: np.ndarray, *, max_offset: float, smoothness: float, rng: np.random.Generator) -> np.ndarray:
    """``mask`` with its boundary moved outward (field > 0) or inward by a smooth random field: Gaussian-filtered
    noise (sigma ``smoothness`` voxels) scaled so that two standard deviations reach ``max_offset`` voxels, clipped to
    [-max_offset, max_offset]. Only voxels within ``max_offset`` of the boundary (``signed_distance``) can change."""
    field = ndimage.gaussian_filter(rng.standard_normal(mask.shape), smoothness)
    field = max_offset * np.clip(field / max(2.0 * float(field.std()), 1e-12), -1.0, 1.0)
    return signed_distance(mask) < field


def corrupt_label_map(
    labels: np.ndarray, *, spacing: Sequence[float], rng: np.random.Generator, kinds: Sequence[str] = KINDS
) -> tuple[np.ndarray, dict]:
    """One low-quality version of an integer label map (module docstring for the operations).

    Args:
        labels: (A0, A1, A2) integer label map.
        spacing: voxel size in mm per axis, same axis order as ``labels``.
        rng: draws the operation and its parameters.
        kinds: operations to draw from.

    Returns:
        (corrupted map of the same dtype, record ``{"kind": ..., parameters}`` for ``label_corruption.json``).
    """
    kind = str(rng.choice(list(kinds)))
    record: dict = {"kind": kind}
    if kind == "shift":
        direction = rng.standard_normal(3)
        mm = float(rng.uniform(3.0, 8.0))
        offset = np.round(direction / np.linalg.norm(direction) * mm / np.asarray(spacing, float)).astype(int)
        if not offset.any():
            offset[int(np.argmax(np.abs(direction) / np.asarray(spacing, float)))] = 1
        record.update(mm=round(mm, 2), offset_voxels=offset.tolist())
        return shift(labels, offset=offset), record
    if kind == "dilate_erode":
        record["voxels"] = int(rng.integers(1, 4)) * (1 if rng.random() < 0.5 else -1)
    elif kind == "missing_part":
        record["fraction"] = round(float(rng.uniform(0.2, 0.4)), 3)
    else:
        record.update(max_offset=round(float(rng.uniform(1.5, 3.0)), 3), smoothness=4.0)
    out = np.zeros_like(labels)
    for label in (int(v) for v in np.unique(labels) if v > 0):
        mask = labels == label
        if kind == "dilate_erode":
            new = dilate_erode(mask, voxels=record["voxels"])
        elif kind == "missing_part":
            axis, high = int(rng.integers(3)), bool(rng.random() < 0.5)
            new = remove_part(mask, axis=axis, fraction=record["fraction"], from_high=high)
        else:
            new = boundary_offset(mask, max_offset=record["max_offset"], smoothness=record["smoothness"], rng=rng)
        out[new] = label
    return out, record
