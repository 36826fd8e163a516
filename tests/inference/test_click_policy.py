"""Click policy: the PET prior's gate, local corrections and click consistency on hand-made arrays, and the rules'
invariants inside a real session (untrained tiny network, real nnU-Net preprocessing)."""

from __future__ import annotations

import cc3d
import numpy as np
import pytest
from inference_data import new_session, shared_model
from scipy import ndimage

from seganypet_nnunet.inference import click_policy as P
from seganypet_nnunet.inference import coordinates as C
from seganypet_nnunet.inference import reader_region as RR

SPACING = (2.0, 2.0, 2.0)


def _hot_sphere(value: float = 8.0):
    grids = np.ogrid[:30, :30, :30]
    sphere = sum((g - 15) ** 2 for g in grids) <= 16
    suv = np.ones((30, 30, 30), np.float32)
    suv[sphere] = value
    return suv, sphere


def test_pet_prior_gate():
    suv, sphere = _hot_sphere()
    assert np.array_equal(P.pet_prior(suv, (15, 15, 16), SPACING, P.ClickPolicy()), sphere)
    assert np.array_equal(P.pet_prior(suv, (15, 15, 20), SPACING, P.ClickPolicy()), sphere)  # 1 voxel outside
    assert P.pet_prior(suv, (15, 15, 23), SPACING, P.ClickPolicy()) is None  # 4 voxels outside: not on it
    cold, _ = _hot_sphere(3.0)
    assert P.pet_prior(cold, (15, 15, 15), SPACING, P.ClickPolicy()) is None  # SUVmax 3 < 4: not hot
    assert P.pet_prior(suv, (15, 15, 15), SPACING, P.ClickPolicy(prior_max_ml=0.1)) is None  # too large


def test_keep_local_changes_reverts_distant_changes_only():
    before = np.full((10, 10, 30), -5.0, np.float32)
    before[2:5, 2:5, 2:6] = 5.0  # part A, near the click
    before[2:5, 2:5, 20:25] = 5.0  # part B, far away
    after = before.copy()
    after[2:5, 2:5, 6:9] = 5.0  # A grows towards the click
    after[2:5, 2:5, 20:25] = -5.0  # the network dropped B
    after[8, 8, 28] = 5.0  # and added a speck
    region = tuple(slice(0, n) for n in before.shape)
    out = P.keep_local_changes(before, after, np.array([[3.0, 3.0, 7.0]]), region)
    assert (out[2:5, 2:5, 2:9] > 0).all() and (out[2:5, 2:5, 20:25] > 0).all() and out[8, 8, 28] < 0
    inner = (slice(0, 10), slice(0, 10), slice(15, 30))  # outside the region nothing is reverted
    assert np.array_equal(
        P.keep_local_changes(before, after, np.array([[3.0, 3.0, 7.0]]), inner)[2:5, 2:5, 6:9], 5.0 * np.ones((3, 3, 3))
    )


def test_a_region_clicked_on_itself_is_a_focus_from_a_lower_contrast():
    suv, sphere = _hot_sphere(6.0)  # contrast 6: under prior_contrast 7, over prior_contrast_in_region 5
    policy = P.ClickPolicy()
    assert P.is_focus(suv, sphere, (15, 15, 15), policy)  # clicked on the hot spot itself
    assert not P.is_focus(suv, sphere, (15, 15, 20), policy)  # clicked next to it (an organ beside a hot spot)
    assert not P.is_focus(suv, sphere, (15, 15, 15), P.ClickPolicy(prior_contrast_in_region=7.0))
    hot, sphere = _hot_sphere(8.0)
    assert P.is_focus(hot, sphere, (15, 15, 20), policy)  # contrast 8: a focus wherever the click


def test_agreement():
    a, b = np.zeros((4, 4, 4), bool), np.zeros((4, 4, 4), bool)
    assert P.agreement(a, b) == 1.0
    a[:2], b[1:3] = True, True
    assert P.agreement(a, b) == 0.5


def test_prior_is_answer_unless_it_is_a_speck_of_a_warm_structure_the_network_answered_with():
    policy = P.ClickPolicy()  # agreement >= 0.5; a focus under 10 % of an answer whose rest has SUV >= 1.5 gives way
    spot = np.zeros((20, 20, 20), bool)
    spot[9:11, 9:11, 9:11] = True  # 8 voxels
    organ = np.zeros_like(spot)
    organ[4:16, 4:16, 4:16] = True  # 1728 voxels around it: the spot is 0.5 % of the answer
    warm, cold = np.where(organ, 3.0, 0.5), np.full(spot.shape, 0.5)
    warm[spot] = cold[spot] = 20.0
    assert not P.prior_is_answer(spot, organ, warm, True, policy)  # a hot spot inside a kidney: the network's kidney
    assert P.prior_is_answer(spot, organ, cold, True, policy)  # a lesion the network over-grew into background
    assert not P.prior_is_answer(spot, organ, cold, False, policy)  # not a focus: the network's answer
    lesion = np.zeros_like(spot)
    lesion[8:12, 8:12, 8:12] = True  # 64 voxels: the spot is 12.5 % of it
    assert P.prior_is_answer(spot, lesion, warm, True, policy)
    assert P.prior_is_answer(lesion, spot | lesion, warm, False, policy)  # agreement 1.0: kept, focus or not
    assert P.prior_is_answer(spot, np.zeros_like(spot), warm, True, policy)  # the network found nothing: the focus
    assert P.prior_is_answer(spot, organ, warm, True, P.ClickPolicy(prior_min_share=0.0))


def test_enforce_clicks_labels_and_components():
    logits = np.full((10, 10, 30), -5.0, np.float32)
    logits[2:5, 2:5, 2:6] = 5.0
    logits[2:5, 2:5, 20:25] = 5.0
    logits[7, 7, 7] = 2.0
    points = [(np.array([3.0, 3.0, 3.0]), 1), (np.array([7.0, 7.0, 7.0]), 0), (np.array([8.4, 1.0, 12.0]), 1)]
    full = tuple(slice(0, n) for n in logits.shape)
    P.enforce_clicks(logits, points, P.ClickPolicy(), [full])
    assert logits[7, 7, 7] == -1.0 and logits[8, 1, 12] == 1.0  # clicked labels kept (rounded voxel)
    assert (logits[2:5, 2:5, 2:6] > 0).all() and (logits[2:5, 2:5, 20:25] < 0).all()  # unclicked component dropped
    kept = np.full((10, 10, 30), -5.0, np.float32)
    kept[2:5, 2:5, 20:25] = 5.0
    P.enforce_clicks(kept, points[:1], P.ClickPolicy(clicked_components_only=False), [full])
    assert (kept[2:5, 2:5, 20:25] > 0).all()


@pytest.fixture(scope="module")
def model_paths(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        yield shared_model(tmp_path_factory, mp)


def test_session_rules_on_a_real_network(model_paths):
    image = model_paths[0] / "imagesTs" / "test00_0000.nii.gz"
    session = new_session(model_paths[1], image)
    suv = session._suv
    hot = np.unravel_index(int(np.argmax(suv)), suv.shape)  # array (z, y, x) of the blob's hottest voxel
    ijk = tuple(float(c) for c in hot[::-1])
    session.add_point(ijk, space="voxel")
    logits = session.logits()
    fg = cc3d.connected_components(logits > 0, connectivity=26)
    click = tuple(np.rint(C.voxel_to_preprocessed(np.array(ijk), session.geometry)).astype(int))
    assert logits[click] > 0 and fg.max() == 1  # one component, holding the click
    assert session.undo().sum() == 0 and session.logits() is None  # undo of the first click: no prompt, no mask
    session.add_point(ijk, space="voxel")
    before = session.logits()
    far = tuple(float(c) for c in np.array(suv.shape[::-1]) // 4)  # a negative click away from the blob
    session.add_point(far, positive=False, space="voxel")
    after = session.logits()
    changed = cc3d.connected_components((before > 0) != (after > 0), connectivity=26)
    neg = tuple(np.rint(C.voxel_to_preprocessed(np.array(far), session.geometry)).astype(int))
    assert set(np.unique(changed)) <= {0, int(changed[neg])}  # every change holds the correction click
    bare = new_session(model_paths[1], image, click_policy=P.ClickPolicy.off())
    assert bare.add_point(ijk, space="voxel").shape == session.array_shape


def test_prior_answer_returns_the_readers_region_and_undoes_cleanly(model_paths):
    image = model_paths[0] / "imagesTs" / "test00_0000.nii.gz"
    policy = P.ClickPolicy(prior_contrast=0.0, prior_min_share=0.0)  # every prior counts as a focus: always kept
    session = new_session(model_paths[1], image, click_policy=policy)
    suv = session._suv
    hot = np.unravel_index(int(np.argmax(suv)), suv.shape)
    mask = session.add_point(tuple(float(c) for c in hot[::-1]), space="voxel")
    prior = P.pet_prior(suv, hot, session.properties["spacing"], session.click_policy)
    assert prior is not None and mask[hot] == 1
    assert (mask.astype(bool) ^ prior).sum() <= 0.2 * prior.sum()  # the region, up to nnU-Net's resampling round trip
    assert set(np.unique(session.logits())) == {-10.0, 10.0}  # the network's refinement was not kept
    assert session.undo().sum() == 0 and session.logits() is None


def test_a_positive_correction_only_adds_and_a_negative_one_only_removes():
    before = np.full((10, 10, 10), -5.0, np.float32)
    before[2:8, 2:8, 2:8] = 5.0
    after = before.copy()
    after[2:8, 2:8, 8] = 5.0  # grows next to the click
    after[2:8, 2:8, 2:4] = -5.0  # and shrinks, connected to the growth
    full = tuple(slice(0, n) for n in before.shape)
    click = np.array([[5.0, 5.0, 8.0]])
    out = P.keep_local_changes(before, after, click, full, [1])
    assert (out[2:8, 2:8, 2:9] > 0).all()  # the addition kept, the removal reverted
    out = P.keep_local_changes(before, after, np.array([[5.0, 5.0, 3.0]]), full, [0])
    assert (out[2:8, 2:8, 2:4] < 0).all() and (out[2:8, 2:8, 8] < 0).all()  # only the removal


def test_correction_reach_bounds_growth_by_the_clicks_distance_to_the_mask():
    # a 1-voxel-thick slab missed next to the mask: the click 2 voxels from the mask may grow ~2 x 2 voxels around it,
    # not along the whole neighbouring structure the network also switched on
    before = np.full((12, 12, 30), -5.0, np.float32)
    before[2:10, 2:10, 2:8] = 5.0
    after = before.copy()
    after[2:10, 2:10, 8:28] = 5.0  # the network grows far beyond the missed part
    full = tuple(slice(0, n) for n in before.shape)
    click = np.array([[5.0, 5.0, 9.0]])  # 2 voxels from the mask (last mask slice: 7)
    unbounded = P.keep_local_changes(before, after, click, full, [1])
    assert (unbounded[2:10, 2:10, 8:28] > 0).all()
    out = P.keep_local_changes(before, after, click, full, [1], reach=2.0)
    grown = np.flatnonzero((out[5, 5, :] > 0) & (before[5, 5, :] <= 0))
    assert grown.min() == 8 and grown.max() == 13  # reach: a ball of 2 x 2 = 4 voxels around z = 9
    assert out[8, 8, 9] < 0 and out[8, 5, 9] > 0  # (3, 3, 0) away: 4.24 > 4, outside; (3, 0, 0): inside
    assert (out[2:10, 2:10, 14:] < 0).all() and (out[before > 0] > 0).all()
    # a negative click 2 voxels from the background: removals bounded to 2 x 2 voxels around it
    long = np.full((12, 12, 30), -5.0, np.float32)
    long[2:10, 2:10, 2:28] = 5.0
    gone = np.full_like(long, -5.0)
    out = P.keep_local_changes(long, gone, np.array([[5.0, 5.0, 26.0]]), full, [0], reach=2.0)
    removed = np.flatnonzero((out[5, 5, :] <= 0) & (long[5, 5, :] > 0))
    assert removed.min() == 22 and removed.max() == 27
    assert (out[2:10, 2:10, 2:22] > 0).all() and out[2, 2, 26] > 0 and out[2, 5, 26] <= 0
    # a click outside the region (a crop that did not hold it): its ball is clipped, nothing wraps around
    inner = (slice(2, 10), slice(2, 10), slice(10, 30))
    out = P.keep_local_changes(long, gone, np.array([[5.0, 5.0, 6.0]]), inner, [0], reach=2.0)
    np.testing.assert_array_equal(out[inner], long[inner])  # the removal does not touch the click: reverted


def test_reader_corrections_move_the_region_without_the_network_and_undo_restores_them(model_paths):
    image = model_paths[0] / "imagesTs" / "test00_0000.nii.gz"
    # the region is always the first answer, and its corrections are the reader's whatever the network answered
    policy = P.ClickPolicy(prior_contrast=0.0, prior_min_share=0.0, reader_max_agreement=1.01)
    session = new_session(model_paths[1], image, click_policy=policy)
    suv = session._suv
    hot = np.unravel_index(int(np.argmax(suv)), suv.shape)
    first = session.add_point(tuple(float(c) for c in hot[::-1]), space="voxel").astype(bool)
    state = session._target().reader
    assert state is not None and state.fraction == policy.prior_fraction
    region = RR.region(suv, state, session.properties["spacing"], policy.reader_cut_ratio)
    shell = ndimage.binary_dilation(region, np.ones((3, 3, 3), bool)) & ~region & ~first
    rim = np.unravel_index(int(np.argmax(np.where(shell, suv, -np.inf))), suv.shape)  # hottest voxel just outside
    grown = session.add_point(tuple(float(c) for c in rim[::-1]), space="voxel").astype(bool)
    moved = session._target().reader
    assert moved.fraction < state.fraction and moved.positives[-1] == rim  # the threshold moved down to the click
    assert grown[rim] and (grown >= first).all() and grown.sum() > first.sum()  # it only adds, the click included
    assert set(np.unique(session.logits())) == {-10.0, 10.0}  # a region, not the network's logits
    assert np.array_equal(session.undo().astype(bool), first) and session._target().reader == state
    session.click_policy = P.ClickPolicy(prior_contrast=0.0, prior_min_share=0.0, reader_max_agreement=0.0)
    session.undo()
    session.add_point(tuple(float(c) for c in hot[::-1]), space="voxel")
    assert session._target().reader is None  # the network agreed (Dice >= 0): its corrections stand
