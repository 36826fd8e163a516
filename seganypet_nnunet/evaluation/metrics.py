"""Segmentation metrics for promptable PET segmentation (numpy, one target at a time).

Conventions shared by every function:
- ``pred`` and ``ref`` are 3D bool arrays of equal shape, any axis order; ``spacing`` is the voxel size in mm per axis,
  in the SAME axis order as the arrays.
- Connected components use cc3d with 26-connectivity, except the autoPET FP/FN volumes, which default to the
  challenge script's 18-connectivity so numbers are comparable with autoPET results.
- Surface: the border voxels of a mask, i.e. mask voxels with at least one face (6-)neighbour outside the mask; the
  array boundary counts as outside. Surface distances are Euclidean distances in mm between border-voxel CENTRES
  (scipy EDT with ``sampling=spacing``), so identical masks have distance 0. Every border voxel has equal weight (no
  surface-element areas as in DeepMind's ``surface-distance``).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Sequence

import cc3d
import numpy as np
from scipy import ndimage

#: The autoPET challenge evaluation script labels FP/FN components with 18-connectivity.
AUTOPET_CONNECTIVITY = 18
#: NSD tolerance in mm used by ``compute_target_metrics`` and ``seganypet_evaluate`` (library and CLI default).
DEFAULT_TOLERANCE_MM = 2.0
_FACE = ndimage.generate_binary_structure(3, 1)


@dataclass(frozen=True)
class LesionDetection:
    """Lesion-wise detection counts and scores (see ``lesion_detection``).

    Attributes:
        tp: Reference lesions detected.
        fp: Predicted components matching no reference lesion.
        fn: Reference lesions not detected.
        precision: tp / (tp + fp); NaN when 0/0.
        recall: tp / (tp + fn); NaN when 0/0.
        f1: 2 tp / (2 tp + fp + fn); NaN when 0/0.
    """

    tp: int
    fp: int
    fn: int
    precision: float
    recall: float
    f1: float


def _pair(pred: np.ndarray, ref: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pred, ref = np.asarray(pred), np.asarray(ref)
    if pred.ndim != 3 or pred.shape != ref.shape:
        raise ValueError(f"pred and ref must be 3D arrays of equal shape, got {pred.shape} and {ref.shape}")
    return pred.astype(bool, copy=False), ref.astype(bool, copy=False)


def _spacing(spacing: Sequence[float] | None) -> np.ndarray:
    if spacing is None:
        return np.ones(3)
    s = np.asarray(spacing, dtype=np.float64)
    if s.shape != (3,) or not np.all(s > 0):
        raise ValueError(f"spacing must be 3 positive numbers in mm, got {spacing}")
    return s


def _ratio(num: float, den: float) -> float:
    return float(num / den) if den > 0 else float("nan")


def dice(pred: np.ndarray, ref: np.ndarray) -> float:
    """Dice = 2|P∩R| / (|P| + |R|).

    Args:
        pred: 3D bool prediction.
        ref: 3D bool reference, same shape.

    Returns:
        Dice in [0, 1]; 1.0 when both masks are empty (a correct "nothing"; autoPET reports NaN for an empty
        reference instead).
    """
    pred, ref = _pair(pred, ref)
    total = int(pred.sum()) + int(ref.sum())
    if total == 0:
        return 1.0
    return 2.0 * int(np.count_nonzero(pred & ref)) / total


def _border(mask: np.ndarray) -> np.ndarray:
    """Border voxels (see module docstring) of a 3D bool mask."""
    return mask & ~ndimage.binary_erosion(mask, structure=_FACE, border_value=0)


def _surface_distances(pred: np.ndarray, ref: np.ndarray, spacing: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(distances pred-border → ref-border, ref-border → pred-border) in mm; both borders must be non-empty."""
    bp, br = _border(pred), _border(ref)
    to_ref = ndimage.distance_transform_edt(~br, sampling=spacing)
    to_pred = ndimage.distance_transform_edt(~bp, sampling=spacing)
    return to_ref[bp], to_pred[br]


def surface_dice(pred: np.ndarray, ref: np.ndarray, spacing: Sequence[float], tolerance_mm: float) -> float:
    """Normalised surface Dice (NSD, Nikolov et al. 2021) at a tolerance.

    NSD = (#{pred border voxels within tol of the ref border} + #{ref border voxels within tol of the pred border})
    / (#pred border voxels + #ref border voxels), with "within" meaning distance <= ``tolerance_mm``.

    Args:
        pred: 3D bool prediction.
        ref: 3D bool reference, same shape and axis order.
        spacing: Voxel size in mm, (3,), axis order of the arrays.
        tolerance_mm: Tolerance in mm, >= 0.

    Returns:
        NSD in [0, 1]; 1.0 if both masks are empty, 0.0 if exactly one is.

    Warns:
        UserWarning: ``tolerance_mm`` is below the largest spacing; along that axis the border voxel centres are a
            whole voxel apart, so every tolerance in [0, spacing) gives the same, exact-boundary score.
    """
    pred, ref = _pair(pred, ref)
    s = _spacing(spacing)
    if tolerance_mm < 0:
        raise ValueError(f"tolerance_mm must be >= 0, got {tolerance_mm}")
    if tolerance_mm < s.max():
        warnings.warn(
            f"surface_dice: tolerance {tolerance_mm} mm is below the largest voxel spacing {s.max():g} mm; "
            "along that axis NSD is an exact-boundary score",
            stacklevel=2,
        )
    if not pred.any() and not ref.any():
        return 1.0
    if not pred.any() or not ref.any():
        return 0.0
    d_pr, d_rp = _surface_distances(pred, ref, s)
    within = np.count_nonzero(d_pr <= tolerance_mm) + np.count_nonzero(d_rp <= tolerance_mm)
    return within / (d_pr.size + d_rp.size)


def hd95(pred: np.ndarray, ref: np.ndarray, spacing: Sequence[float]) -> float:
    """95th percentile Hausdorff distance in mm.

    The 95th percentile (numpy linear interpolation) of the pooled symmetric surface distances, i.e. pred-border →
    ref-border and ref-border → pred-border distances concatenated (the medpy ``hd95`` convention).

    Args:
        pred: 3D bool prediction.
        ref: 3D bool reference, same shape and axis order.
        spacing: Voxel size in mm, (3,), axis order of the arrays.

    Returns:
        HD95 in mm; NaN if both masks are empty, inf if exactly one is.
    """
    pred, ref = _pair(pred, ref)
    s = _spacing(spacing)
    if not pred.any() and not ref.any():
        return float("nan")
    if not pred.any() or not ref.any():
        return float("inf")
    d_pr, d_rp = _surface_distances(pred, ref, s)
    return float(np.percentile(np.concatenate([d_pr, d_rp]), 95))


def _unmatched_volume_ml(mask: np.ndarray, other: np.ndarray, spacing: np.ndarray, connectivity: int) -> float:
    """mL of the components of ``mask`` that share no voxel with ``other``."""
    labels = cc3d.connected_components(mask, connectivity=connectivity)
    touched = np.unique(labels[other & mask])
    unmatched = mask & ~np.isin(labels, touched)
    return float(np.count_nonzero(unmatched) * np.prod(spacing) / 1000.0)


def false_positive_volume(
    pred: np.ndarray, ref: np.ndarray, spacing: Sequence[float], *, connectivity: int = AUTOPET_CONNECTIVITY
) -> float:
    """autoPET false-positive volume: mL of predicted connected components that overlap no reference voxel.

    Args:
        pred: 3D bool prediction.
        ref: 3D bool reference, same shape and axis order.
        spacing: Voxel size in mm, (3,), axis order of the arrays (voxel volume = prod(spacing) / 1000 mL).
        connectivity: cc3d connectivity (6, 18 or 26); default 18, as in the autoPET challenge script.

    Returns:
        Volume in mL; 0.0 when the prediction is empty.
    """
    pred, ref = _pair(pred, ref)
    return _unmatched_volume_ml(pred, ref, _spacing(spacing), connectivity)


def false_negative_volume(
    pred: np.ndarray, ref: np.ndarray, spacing: Sequence[float], *, connectivity: int = AUTOPET_CONNECTIVITY
) -> float:
    """autoPET false-negative volume: mL of reference connected components that no predicted voxel overlaps.

    Args:
        pred: 3D bool prediction.
        ref: 3D bool reference, same shape and axis order.
        spacing: Voxel size in mm, (3,), axis order of the arrays (voxel volume = prod(spacing) / 1000 mL).
        connectivity: cc3d connectivity (6, 18 or 26); default 18, as in the autoPET challenge script.

    Returns:
        Volume in mL; 0.0 when the reference is empty (nothing can be missed; the autoPET scripts also give 0 mL).
    """
    pred, ref = _pair(pred, ref)
    return _unmatched_volume_ml(ref, pred, _spacing(spacing), connectivity)


def _component_ious(pred: np.ndarray, ref: np.ndarray, connectivity: int) -> tuple[np.ndarray, int, int]:
    """IoU matrix (n_ref, n_pred) between the connected components of ref and pred."""
    lr, n_ref = cc3d.connected_components(ref, connectivity=connectivity, return_N=True)
    lp, n_pred = cc3d.connected_components(pred, connectivity=connectivity, return_N=True)
    size_r = np.bincount(lr.ravel(), minlength=n_ref + 1)[1:]
    size_p = np.bincount(lp.ravel(), minlength=n_pred + 1)[1:]
    both = (lr > 0) & (lp > 0)
    inter = np.zeros((n_ref, n_pred))
    np.add.at(inter, (lr[both].astype(np.int64) - 1, lp[both].astype(np.int64) - 1), 1)
    union = size_r[:, None] + size_p[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0), n_ref, n_pred


def lesion_detection(
    pred: np.ndarray,
    ref: np.ndarray,
    spacing: Sequence[float] | None = None,
    min_overlap: float = 0.0,
    *,
    min_volume_ml: float = 0.0,
    connectivity: int = 26,
) -> LesionDetection:
    """Lesion-wise detection from connected components.

    Criterion: a reference component is detected (TP) when some predicted component has IoU > ``min_overlap`` with
    it; otherwise it is FN. A predicted component with IoU <= ``min_overlap`` against every reference component is FP.
    With the default 0.0 this is "any overlap" (autoPET style; one predicted blob may detect several lesions); 0.3
    gives the HECKTOR 2025 rule. F1 = 2TP / (2TP + FP + FN).

    Args:
        pred: 3D bool prediction.
        ref: 3D bool reference, same shape and axis order.
        spacing: Voxel size in mm, (3,), axis order of the arrays; needed only when ``min_volume_ml`` > 0.
        min_overlap: IoU threshold in [0, 1).
        min_volume_ml: Components (in both masks) smaller than this are dropped before matching.
        connectivity: cc3d connectivity (6, 18 or 26).

    Returns:
        LesionDetection.
    """
    pred, ref = _pair(pred, ref)
    if not 0.0 <= min_overlap < 1.0:
        raise ValueError(f"min_overlap must be in [0, 1), got {min_overlap}")
    if min_volume_ml > 0:
        if spacing is None:
            raise ValueError("lesion_detection: min_volume_ml > 0 needs spacing")
        min_vox = min_volume_ml * 1000.0 / float(np.prod(_spacing(spacing)))
        pred, ref = (cc3d.dust(m, threshold=int(np.ceil(min_vox)), connectivity=connectivity) for m in (pred, ref))
    iou, n_ref, n_pred = _component_ious(pred, ref, connectivity)
    matched = iou > min_overlap
    tp = int(matched.any(axis=1).sum())
    fp = n_pred - int(matched.any(axis=0).sum())
    fn = n_ref - tp
    return LesionDetection(
        tp=tp,
        fp=fp,
        fn=fn,
        precision=_ratio(tp, tp + fp),
        recall=_ratio(tp, tp + fn),
        f1=_ratio(2 * tp, 2 * tp + fp + fn),
    )


def dice_auc(dice_per_click: Sequence[float]) -> float:
    """Normalised area under the Dice-vs-clicks curve.

    Convention: the n values are placed at x = 0, 1/(n-1), ..., 1 (click index rescaled to [0, 1]) and integrated with
    the trapezoid rule, so a constant curve c gives c and a linear 0 → 1 curve gives 0.5. This equals autoPET IV's
    ``trapz`` (unit step) area divided by n - 1. One value gives that value.

    Args:
        dice_per_click: Dice after each click (n >= 1), in click order.

    Returns:
        AUC in [0, 1] for Dice values in [0, 1].
    """
    y = np.asarray(dice_per_click, dtype=np.float64)
    if y.ndim != 1 or y.size == 0:
        raise ValueError(f"dice_per_click must be a non-empty 1D sequence, got shape {y.shape}")
    if y.size == 1:
        return float(y[0])
    return float(np.sum((y[1:] + y[:-1]) / 2.0) / (y.size - 1))


def compute_target_metrics(
    pred: np.ndarray,
    ref: np.ndarray,
    spacing: Sequence[float],
    tolerance_mm: float = DEFAULT_TOLERANCE_MM,
    lesion: bool = False,
) -> dict[str, float]:
    """All metrics for one target.

    Args:
        pred: 3D bool prediction.
        ref: 3D bool reference, same shape and axis order.
        spacing: Voxel size in mm, (3,), axis order of the arrays.
        tolerance_mm: NSD tolerance in mm (``DEFAULT_TOLERANCE_MM``, as ``seganypet_evaluate``; SegAnyPET reports
            1 mm, which on PET voxels of 2-4 mm is an exact-boundary score, see ``surface_dice``).
        lesion: Also add lesion-wise detection (``lesion_tp/fp/fn``, ``lesion_precision/recall/f1``).

    Returns:
        Dict with ``dice``, ``nsd``, ``hd95_mm``, ``fp_volume_ml``, ``fn_volume_ml`` and, if ``lesion``, the detection
        keys; all values float.
    """
    out = {
        "dice": dice(pred, ref),
        "nsd": surface_dice(pred, ref, spacing, tolerance_mm),
        "hd95_mm": hd95(pred, ref, spacing),
        "fp_volume_ml": false_positive_volume(pred, ref, spacing),
        "fn_volume_ml": false_negative_volume(pred, ref, spacing),
    }
    if lesion:
        det = lesion_detection(pred, ref, spacing)
        out.update({f"lesion_{k}": float(v) for k, v in vars(det).items()})
    return out
