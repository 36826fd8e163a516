"""Metrics against hand computations on hand-placed cubes and plates (anisotropic spacing catches axis mix-ups)."""

from __future__ import annotations

import math
import re
import warnings

import numpy as np
import pytest

from seganypet_nnunet.evaluation.metrics import (
    compute_target_metrics,
    dice,
    dice_auc,
    false_negative_volume,
    false_positive_volume,
    hd95,
    lesion_detection,
    surface_dice,
)

SHAPE = (20, 24, 28)
SPACING = (2.5, 1.0, 0.7)


def _box(lo, hi, shape=SHAPE) -> np.ndarray:
    """Bool mask with the inclusive index box lo..hi set."""
    mask = np.zeros(shape, dtype=bool)
    mask[tuple(slice(a, b + 1) for a, b in zip(lo, hi, strict=True))] = True
    return mask


def _plate(k: int) -> np.ndarray:
    """One-voxel-thick 16 x 18 plate at axis-0 index k (every voxel is a border voxel)."""
    return _box((k, 3, 4), (k, 18, 21))


def test_dice_offset_cubes_and_empty_cases():
    a = _box((2, 2, 2), (7, 7, 7))  # 6^3 = 216
    b = _box((2, 4, 2), (7, 9, 7))  # shifted 2 along axis 1: overlap 6 * 4 * 6 = 144
    assert dice(a, b) == pytest.approx(2 * 144 / 432)
    empty = np.zeros(SHAPE, dtype=bool)
    assert dice(empty, empty) == 1.0
    assert dice(a, empty) == 0.0


def test_hd95_parallel_plates_anisotropic():
    # Every voxel of either plate is 4 slices from the other plate along axis 0: 4 * 2.5 mm = 10 mm.
    assert hd95(_plate(5), _plate(9), SPACING) == pytest.approx(10.0)
    assert hd95(_plate(5), _plate(5), SPACING) == 0.0


def test_hd95_single_voxels_diagonal():
    a, b = np.zeros(SHAPE, dtype=bool), np.zeros(SHAPE, dtype=bool)
    a[3, 4, 5] = True
    b[6, 8, 5] = True  # offset (3, 4, 0) voxels = (7.5, 4.0, 0) mm -> 8.5 mm
    assert hd95(a, b, SPACING) == pytest.approx(8.5)


def test_hd95_and_nsd_with_partially_matching_surface():
    # ref = plate 5 (288 border voxels); pred = plate 5 + plate 9. Distances: 288 + 288 zeros, 288 of 10 mm.
    ref, pred = _plate(5), _plate(5) | _plate(9)
    assert surface_dice(pred, ref, SPACING, 9.9) == pytest.approx(2 / 3)
    assert surface_dice(pred, ref, SPACING, 10.1) == pytest.approx(1.0)
    assert hd95(pred, ref, SPACING) == pytest.approx(10.0)  # top third of the pooled distances is 10 mm


def test_surface_dice_tolerance_just_below_and_above_shift():
    assert surface_dice(_plate(5), _plate(9), SPACING, 9.9) == 0.0
    assert surface_dice(_plate(5), _plate(9), SPACING, 10.1) == 1.0


def test_surface_metrics_empty_cases():
    empty, a = np.zeros(SHAPE, dtype=bool), _plate(5)
    assert surface_dice(empty, empty, SPACING, 1.0) == 1.0
    assert surface_dice(a, empty, SPACING, 1.0) == 0.0
    assert math.isnan(hd95(empty, empty, SPACING))
    assert hd95(empty, a, SPACING) == math.inf


def test_fp_fn_volumes_extra_and_missed_blobs():
    voxel_ml = 2 * 3 * 4 / 1000.0
    ref_hit = _box((2, 2, 2), (4, 4, 4))  # 27 voxels, overlapped by the prediction
    ref_missed = _box((15, 2, 2), (16, 3, 3))  # 8 voxels, missed
    pred_partial = _box((3, 2, 2), (5, 4, 4))  # overlaps ref_hit; its extra voxels are NOT FP volume
    pred_extra = _box((10, 15, 20), (13, 17, 21))  # 4 * 3 * 2 = 24 voxels, touching nothing
    ref, pred = ref_hit | ref_missed, pred_partial | pred_extra
    assert false_positive_volume(pred, ref, (2, 3, 4)) == pytest.approx(24 * voxel_ml)
    assert false_negative_volume(pred, ref, (2, 3, 4)) == pytest.approx(8 * voxel_ml)


def test_fp_volume_connectivity_corner_touch():
    ref = _box((2, 2, 2), (4, 4, 4))
    # Two 2^3 cubes meeting only at a corner; the first overlaps ref. One component under 26-connectivity, two under
    # 6 and under the default 18 (autoPET's), where the corner-touching cube is a separate false positive.
    pred = _box((4, 4, 4), (5, 5, 5)) | _box((6, 6, 6), (7, 7, 7))
    assert false_positive_volume(pred, ref, (1, 1, 1), connectivity=26) == 0.0
    assert false_positive_volume(pred, ref, (1, 1, 1)) == pytest.approx(8 / 1000.0)
    assert false_positive_volume(pred, ref, (1, 1, 1), connectivity=6) == pytest.approx(8 / 1000.0)


def test_fp_fn_volume_empty_cases():
    empty, a = np.zeros(SHAPE, dtype=bool), _plate(5)
    assert false_positive_volume(empty, a, SPACING) == 0.0
    # autoPET scripts: an empty reference has nothing to miss -> 0 mL (not NaN)
    assert false_negative_volume(a, empty, SPACING) == 0.0
    assert false_negative_volume(empty, empty, SPACING) == 0.0


def test_surface_dice_warns_when_tolerance_below_largest_spacing():
    with pytest.warns(UserWarning, match="below the largest voxel spacing 2.5 mm"):
        surface_dice(_plate(5), _plate(5), SPACING, 2.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert surface_dice(_plate(5), _plate(5), SPACING, 2.5) == 1.0


def test_nsd_library_default_equals_cli_default():
    import inspect

    from seganypet_nnunet.evaluation.evaluate_cli import evaluate_entry
    from seganypet_nnunet.evaluation.interactive import evaluate_interactive
    from seganypet_nnunet.evaluation.metrics import DEFAULT_TOLERANCE_MM

    assert inspect.signature(compute_target_metrics).parameters["tolerance_mm"].default == DEFAULT_TOLERANCE_MM
    assert inspect.signature(evaluate_interactive).parameters["tolerance_mm"].default == DEFAULT_TOLERANCE_MM
    found = re.search(r'"-tolerance_mm",\s*type=float,\s*default=([\w.]+)', inspect.getsource(evaluate_entry))
    assert found is not None and found.group(1) in (str(DEFAULT_TOLERANCE_MM), "DEFAULT_TOLERANCE_MM")


def _three_lesions() -> tuple[np.ndarray, np.ndarray]:
    ref = _box((2, 2, 2), (4, 4, 4)) | _box((10, 10, 10), (12, 12, 12)) | _box((2, 18, 20), (4, 20, 22))
    hit_1 = _box((2, 2, 2), (4, 4, 4))  # IoU 1 with lesion 1
    hit_2 = _box((12, 10, 10), (14, 12, 12))  # shifted 2 along axis 0: 9 shared of 45 -> IoU 0.2
    spurious = _box((16, 2, 20), (17, 3, 21))
    return hit_1 | hit_2 | spurious, ref


def test_lesion_detection_any_overlap():
    pred, ref = _three_lesions()
    det = lesion_detection(pred, ref)
    assert (det.tp, det.fp, det.fn) == (2, 1, 1)
    assert det.precision == pytest.approx(2 / 3) and det.recall == pytest.approx(2 / 3)
    assert det.f1 == pytest.approx(4 / 6)


def test_lesion_detection_iou_threshold():
    pred, ref = _three_lesions()
    det = lesion_detection(pred, ref, min_overlap=0.3)  # the IoU-0.2 hit no longer counts
    assert (det.tp, det.fp, det.fn) == (1, 2, 2)
    assert det.f1 == pytest.approx(2 / 6)


def test_lesion_detection_min_volume_drops_small_components():
    pred, ref = _three_lesions()  # spurious blob has 8 voxels = 8 * 0.001 mL at 1 mm
    det = lesion_detection(pred, ref, (1, 1, 1), min_volume_ml=0.01)
    assert (det.tp, det.fp, det.fn) == (2, 0, 1)


def test_dice_auc_constant_linear_and_step():
    assert dice_auc([0.7] * 11) == pytest.approx(0.7)
    assert dice_auc(np.linspace(0, 1, 11)) == pytest.approx(0.5)
    assert dice_auc([0.0, 1.0, 1.0]) == pytest.approx(0.75)  # x = 0, .5, 1: 0.25 + 0.5
    assert dice_auc([0.4]) == 0.4
    with pytest.raises(ValueError):
        dice_auc([])


def test_compute_target_metrics_bundle():
    out = compute_target_metrics(_plate(5) | _plate(9), _plate(5), SPACING, tolerance_mm=9.9, lesion=True)
    assert out["dice"] == pytest.approx(2 * 288 / (576 + 288))
    assert out["nsd"] == pytest.approx(2 / 3)
    assert out["hd95_mm"] == pytest.approx(10.0)
    assert out["fp_volume_ml"] == pytest.approx(288 * 2.5 * 0.7 / 1000.0)
    assert out["fn_volume_ml"] == 0.0
    assert (out["lesion_tp"], out["lesion_fp"], out["lesion_fn"]) == (1.0, 1.0, 0.0)


def test_bad_inputs_raise_value_error():
    with pytest.raises(ValueError):
        dice(np.zeros((3, 3, 3), dtype=bool), np.zeros((3, 3, 4), dtype=bool))
    with pytest.raises(ValueError):
        hd95(_plate(5), _plate(5), (1.0, 1.0))
    with pytest.raises(ValueError):
        lesion_detection(_plate(5), _plate(5), min_volume_ml=1.0)
