"""Reader corrections (``inference/reader_region.py``) on hand-made SUV arrays with known answers."""

from __future__ import annotations

import numpy as np

from seganypet_nnunet.inference import reader_region as RR
from seganypet_nnunet.inference.click_policy import ClickPolicy

SPACING = (2.0, 2.0, 2.0)
POLICY = ClickPolicy()  # reader_max_growth 3, reader_cut_ratio 1.2, correction_reach 2
UNBOUNDED = ClickPolicy(correction_reach=None)


def _ball(shape, centre, radius):
    grids = np.ogrid[tuple(slice(0, n) for n in shape)]
    return sum((g - c) ** 2 for g, c in zip(grids, centre, strict=True)) <= radius**2


def test_start_marks_the_click_when_it_lies_in_the_region_else_the_hottest_voxel():
    suv = np.ones((20, 20, 20), np.float32)
    suv[_ball(suv.shape, (10, 10, 10), 3)] = 10.0
    suv[10, 10, 11] = 12.0
    state = RR.start(suv, (10, 10, 9), SPACING, 0.41)
    assert state.peak == 12.0 and state.positives == ((10, 10, 9),) and state.negatives == ()
    assert RR.start(suv, (10, 10, 14), SPACING, 0.41).positives == ((10, 10, 11),)  # next to it: the peak
    np.testing.assert_array_equal(RR.region(suv, state, SPACING, 1.2), _ball(suv.shape, (10, 10, 10), 3))


def test_a_positive_click_on_the_missed_rim_lowers_the_threshold_to_its_suv():
    suv = np.ones((24, 24, 24), np.float32)
    lesion = _ball(suv.shape, (12, 12, 12), 4)
    suv[lesion] = 3.5  # a rim under 41 % of the peak ...
    suv[_ball(suv.shape, (12, 12, 12), 3)] = 10.0  # ... around a hot core
    state = RR.start(suv, (12, 12, 12), SPACING, 0.41)
    core = RR.region(suv, state, SPACING, 1.2)
    moved = RR.correct(suv, state, core, (12, 12, 16), True, SPACING, UNBOUNDED)
    assert moved is not None
    new, mask = moved
    assert 0.34 < new.fraction < 0.35 and new.positives[-1] == (12, 12, 16)
    np.testing.assert_array_equal(mask, lesion)  # the whole rim, none of the SUV-1 background
    bounded = RR.correct(suv, state, core, (12, 12, 16), True, SPACING, POLICY)[1]
    assert bounded[12, 12, 16] and not bounded[12, 12, 8] and (bounded >= core).all()  # reach: near the click only


def test_a_negative_click_on_a_merged_hot_neighbour_cuts_it_off_at_the_valley():
    suv = np.ones((20, 20, 40), np.float32)
    lesion, neighbour = _ball(suv.shape, (10, 10, 10), 4), _ball(suv.shape, (10, 10, 28), 6)
    suv[neighbour] = 8.0
    suv[lesion] = 10.0
    suv[9:12, 9:12, 14:23] = 5.0  # a bridge above 41 % of the lesion's peak: one region at first
    state = RR.start(suv, (10, 10, 10), SPACING, 0.41)
    merged = RR.region(suv, state, SPACING, 1.2)
    assert merged[lesion].all() and merged[neighbour].all()
    new, mask = RR.correct(suv, state, merged, (10, 10, 28), False, SPACING, POLICY)
    assert new.negatives == ((10, 10, 28),)
    assert mask[lesion].all() and not mask[neighbour].any()  # the neighbour gone, the lesion whole
    assert not mask[:, :, 20:].any() and mask.sum() < merged.sum()  # of the bridge, only the lesion's half stays


def test_a_negative_click_on_a_warm_rim_cannot_take_the_hotter_target_behind_it():
    suv = np.ones((24, 24, 24), np.float32)
    suv[_ball(suv.shape, (12, 12, 12), 6)] = 4.5  # a warm rim above the threshold (0.41 x 10)
    core = _ball(suv.shape, (12, 12, 12), 3)
    suv[core] = 10.0
    state = RR.start(suv, (12, 12, 7), SPACING, 0.41)  # the first click on the rim, on the far side
    whole = RR.region(suv, state, SPACING, 1.2)
    new, mask = RR.correct(suv, state, whole, (12, 12, 17), False, SPACING, POLICY)
    assert mask[core].all() and not mask[12, 12, 17] and mask.sum() < whole.sum()  # rim voxels near it go
    assert mask[12, 12, 7]  # the rim nearer the positive click stays
    uncapped = RR.correct(suv, state, whole, (12, 12, 17), False, SPACING, ClickPolicy(reader_cut_ratio=100.0))[1]
    assert not uncapped[core].all()  # without the SUV cap the cut takes the core's half nearer the click


def test_clicks_the_region_cannot_follow_return_none():
    suv = np.ones((20, 20, 20), np.float32)
    suv[_ball(suv.shape, (10, 10, 10), 3)] = 10.0
    state = RR.start(suv, (10, 10, 10), SPACING, 0.41)
    region = RR.region(suv, state, SPACING, 1.2)
    assert RR.correct(suv, state, region, (10, 10, 15), True, SPACING, UNBOUNDED) is None  # all the background: >3x
    assert RR.correct(suv, state, region, (10, 10, 10), False, SPACING, POLICY) is None  # on the positive click
    cold = suv.copy()
    cold[2, 2, 2] = 0.0
    assert RR.correct(cold, state, region, (2, 2, 2), True, SPACING, POLICY) is None  # SUV 0: no threshold
