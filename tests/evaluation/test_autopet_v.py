"""autoPET V protocol runner: DMM (lesion-wise F1 at IoU >= 0.1) and the scribble case score by hand, and the scribble
loop with a real deterministic prompter. The end-to-end run with the real session is in test_protocols.py.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from protocol_prompters import CubePrompter

from seganypet_nnunet.evaluation.autopet_v import (
    case_rng,
    detection_f1,
    run_scribble_steps,
    score_scribble_case,
    summarize_v,
)

SHAPE = (6, 8, 12)  # (z, y, x)


def _row(z, y, x0, x1) -> np.ndarray:
    m = np.zeros(SHAPE, bool)
    m[z, y, x0 : x1 + 1] = True
    return m


L1, L2 = _row(1, 1, 0, 9), _row(4, 4, 0, 9)  # two 10-voxel lesions


def test_detection_f1_iou_at_least_point_one():
    p1 = _row(1, 1, 0, 0)  # 1 voxel inside L1: IoU 1/10 = 0.1 -> detected
    p2 = _row(4, 4, 0, 0) | _row(4, 5, 0, 0)  # 1 of 2 voxels in L2: IoU 1/11 < 0.1 -> FP, and L2 missed
    assert detection_f1(p1 | p2, L1 | L2) == pytest.approx(2 / (2 + 1 + 1))
    assert detection_f1(L1, L1 | L2) == pytest.approx(2 / 3)
    assert math.isnan(detection_f1(p1, np.zeros(SHAPE, bool)))  # lesion-free: undefined


def test_scribble_case_score_by_hand():
    masks = [np.zeros(SHAPE, bool), L1, L1 | L2]
    out = score_scribble_case(masks, L1 | L2, (2.0, 2.0, 2.0))
    assert [s["dice"] for s in out["steps"]] == pytest.approx([0.0, 2 / 3, 1.0])
    assert [s["dmm"] for s in out["steps"]] == pytest.approx([0.0, 2 / 3, 1.0])
    # normalised trapezoid over x = 0, 0.5, 1: ((0 + 2/3) / 2 + (2/3 + 1) / 2) / 2 = 7/12
    assert out["auc_dice"] == pytest.approx(7 / 12) and out["auc_dmm"] == pytest.approx(7 / 12)
    assert out["score"] == pytest.approx(7 / 12)
    empty = np.zeros(SHAPE, bool)
    free = score_scribble_case([L1, empty, empty], empty, (2.0, 2.0, 2.0))  # lesion-free: FPV only
    assert free["auc_dice"] is None and free["score"] is None
    assert free["fpv_auc_ml"] == pytest.approx(((10 * 0.008 + 0) / 2 + 0) / 2)
    s = summarize_v({"a": out, "b": free})
    assert s["auc_dice"] == pytest.approx(7 / 12) and s["n_lesion_free"] == 1
    assert s["fpv_auc_ml"] == pytest.approx((0 + 0.02) / 2)


def test_scribble_loop_fixes_largest_error_first_then_carries():
    big = L1 | _row(1, 2, 0, 9)  # 20 voxels
    ref = big | L2
    p = CubePrompter(ref)
    masks, scribbles = run_scribble_steps(p, np.zeros(SHAPE, bool), ref, (2.0, 2.0, 2.0), case_rng(0, "c"), 4)
    assert [s is None for s in scribbles] == [False, False, True, True]
    assert scribbles[0].positive and scribbles[0].component_voxels == 20 and scribbles[1].component_voxels == 10
    np.testing.assert_array_equal(masks[1], big)
    np.testing.assert_array_equal(masks[2], ref)
    np.testing.assert_array_equal(masks[4], ref)
    assert [e[0] for e in p.log] == ["start", "scribble", "scribble"]
