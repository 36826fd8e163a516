"""Prompt simulation on hand-placed shapes whose answers are known by construction.

Arrays use deliberately different sizes per axis and off-centre objects, so any axis mix-up changes the answer.
"""

from __future__ import annotations

import numpy as np
import pytest

from seganypet_nnunet.prompts.simulation import (
    first_click,
    first_clicks_batch,
    jittered_box,
    next_click,
    next_clicks_batch,
)
from seganypet_nnunet.prompts.targets import Target, sample_targets, split_by_plane

SHAPE = (21, 26, 30)


def _sphere(shape, centre, radius) -> np.ndarray:
    grid = np.indices(shape)
    return sum((g - c) ** 2 for g, c in zip(grid, centre, strict=True)) <= radius**2


def _cube(shape, centre, half) -> np.ndarray:
    mask = np.zeros(shape, dtype=bool)
    mask[tuple(slice(c - half, c + half + 1) for c in centre)] = True
    return mask


def test_first_click_deterministic_is_sphere_centre():
    centre = (6, 17, 21)
    coord, positive = first_click(Target("s", _sphere(SHAPE, centre, 4), "class"))
    assert positive is True
    assert coord.dtype == np.float64 and coord.shape == (3,)
    np.testing.assert_array_equal(coord, centre)


def test_first_click_deterministic_uses_largest_component():
    mask = _cube(SHAPE, (14, 8, 22), 3) | _cube(SHAPE, (3, 3, 3), 1)
    coord, _ = first_click(mask)
    np.testing.assert_array_equal(coord, (14, 8, 22))


def test_first_click_random_is_interior_and_seeded():
    # 9^3 cube at offset (5, 10, 15): centre EDT = 5 (distance to the outside voxel), threshold 0.5*5 = 2.5, so only
    # voxels at least 3 from the outside, i.e. local indices 2..6, can be drawn.
    mask = np.zeros(SHAPE, dtype=bool)
    mask[5:14, 10:19, 15:24] = True
    coords = [first_click(mask, np.random.default_rng(s))[0] for s in range(30)]
    for c in coords:
        assert np.all(c >= (7, 12, 17)) and np.all(c <= (11, 16, 21))
    again = first_click(mask, np.random.default_rng(3))[0]
    np.testing.assert_array_equal(again, coords[3])
    assert len({tuple(c) for c in coords}) > 1


def test_next_click_fn_in_big_cube_is_positive_at_its_centre():
    big, small = _cube(SHAPE, (10, 18, 9), 3), _cube(SHAPE, (3, 4, 25), 1)
    click = next_click(small, big | small)
    assert click is not None and click.positive is True
    np.testing.assert_array_equal(click.coord, (10, 18, 9))


def test_next_click_fp_blob_is_negative_at_its_centre():
    ref = _cube(SHAPE, (5, 5, 5), 2)
    blob = _sphere(SHAPE, (15, 19, 23), 3)
    click = next_click(ref | blob, ref)
    assert click is not None and click.positive is False
    np.testing.assert_array_equal(click.coord, (15, 19, 23))


def test_next_click_largest_error_wins_over_smaller_fn():
    ref = _cube(SHAPE, (4, 4, 4), 1) | _cube(SHAPE, (12, 12, 12), 1)  # two 27-voxel cubes
    pred = _cube(SHAPE, (12, 12, 12), 1) | _cube(SHAPE, (15, 20, 25), 2)  # misses one, adds a 125-voxel FP
    click = next_click(pred, ref)
    assert click.positive is False
    np.testing.assert_array_equal(click.coord, (15, 20, 25))


def test_next_click_touching_fn_and_fp_are_separate_components():
    ref = np.zeros(SHAPE, dtype=bool)
    pred = np.zeros(SHAPE, dtype=bool)
    ref[2:6, 2:9, 2:9] = True  # FN: rows 2..5 (4 rows)
    pred[6:13, 2:9, 2:9] = True  # FP: rows 6..12 (7 rows), face-touching the FN
    click = next_click(pred, ref)
    # FP alone is larger; its interior-most voxel is its centre (9, 5, 5). A merged component would give row 7.
    assert click.positive is False
    np.testing.assert_array_equal(click.coord, (9, 5, 5))


def test_next_click_no_error_is_none():
    mask = _sphere(SHAPE, (10, 10, 10), 4)
    assert next_click(mask.copy(), mask) is None
    assert next_click(mask.copy(), mask, np.random.default_rng(0)) is None


def test_next_click_random_picks_error_voxels_with_matching_sign():
    ref = _cube(SHAPE, (5, 6, 7), 3)
    pred = _cube(SHAPE, (15, 19, 23), 3)
    fn, fp = ref & ~pred, pred & ~ref
    signs = set()
    for seed in range(20):
        click = next_click(pred, ref, np.random.default_rng(seed))
        idx = tuple(click.coord.astype(int))
        assert (fn[idx] and click.positive) or (fp[idx] and not click.positive)
        signs.add(click.positive)
    assert signs == {True, False}  # equal-size components: both signs drawn over 20 seeds
    a = next_click(pred, ref, np.random.default_rng(7))
    b = next_click(pred, ref, np.random.default_rng(7))
    np.testing.assert_array_equal(a.coord, b.coord)


def test_next_clicks_batch_shapes_and_padding():
    ref = np.stack([_cube(SHAPE, (10, 12, 14), 2), _cube(SHAPE, (4, 4, 4), 1)])
    pred = np.stack([np.zeros(SHAPE, dtype=bool), ref[1]])
    coords, labels, has = next_clicks_batch(pred[:, None], ref[:, None])
    assert coords.shape == (2, 3) and labels.dtype == np.int64
    np.testing.assert_array_equal(coords[0], (10, 12, 14))
    np.testing.assert_array_equal(labels, (1, -1))
    np.testing.assert_array_equal(has, (True, False))
    coords, labels, has = first_clicks_batch(np.stack([ref[0], np.zeros(SHAPE, dtype=bool)]))
    np.testing.assert_array_equal(coords[0], (10, 12, 14))
    np.testing.assert_array_equal(labels, (1, -1))


def test_jittered_box_tight_and_jittered_bounds():
    mask = np.zeros(SHAPE, dtype=bool)
    mask[0:10, 5:15, 10:30] = True  # touches the low edge of axis 0 and the high edge of axis 2
    lo, hi = jittered_box(mask)
    np.testing.assert_array_equal(lo, (0, 5, 10))
    np.testing.assert_array_equal(hi, (9, 14, 29))
    j = np.array([2, 2, 4])  # round(0.2 * extents (10, 10, 20))
    seen_lo = set()
    for seed in range(40):
        lo, hi = jittered_box(mask, np.random.default_rng(seed), jitter_fraction=0.2)
        assert np.all(lo >= np.maximum((0, 5, 10) - j, 0)) and np.all(lo <= (0, 5, 10) + j)
        assert np.all(hi >= (9, 14, 29) - j) and np.all(hi <= np.minimum((9, 14, 29) + j, np.array(SHAPE) - 1))
        seen_lo.add(lo[1])
    assert min(seen_lo) < 5 < max(seen_lo)


def _labelled_patch() -> np.ndarray:
    seg = np.zeros(SHAPE, dtype=np.int16)
    seg[_cube(SHAPE, (5, 5, 5), 2)] = 1
    seg[_cube(SHAPE, (15, 5, 5), 2)] = 2
    seg[_cube(SHAPE, (5, 18, 5), 2)] = 3
    seg[_cube(SHAPE, (5, 18, 22), 1)] = 11
    seg[_cube(SHAPE, (16, 20, 24), 2)] = 11
    seg[19, 0, 0:3] = 4  # 3 voxels: under min_voxels
    return seg


def test_sample_targets_classes_instances_exclusion():
    seg = _labelled_patch()
    targets = sample_targets(
        seg, np.random.default_rng(0), exclude_labels=(3,), lesion_label=11, p_union=0, p_subregion=0, min_voxels=10
    )
    kinds = [t.kind for t in targets]
    assert kinds == ["class", "class", "instance", "instance"]
    np.testing.assert_array_equal(targets[0].mask, seg == 1)
    np.testing.assert_array_equal(targets[1].mask, seg == 2)
    blobs = sorted((t.mask for t in targets[2:]), key=lambda m: int(m.sum()))
    np.testing.assert_array_equal(blobs[0], _cube(SHAPE, (5, 18, 22), 1))
    np.testing.assert_array_equal(blobs[1], _cube(SHAPE, (16, 20, 24), 2))
    for seed in range(10):  # excluded label 3 never appears, alone or inside unions / sub-regions
        for t in sample_targets(
            seg, np.random.default_rng(seed), exclude_labels=(3,), lesion_label=11, p_union=1, p_subregion=1
        ):
            assert not (t.mask & (seg == 3)).any()


def test_sample_targets_union_is_or_of_two_structures():
    seg = np.zeros(SHAPE, dtype=np.int16)
    seg[_cube(SHAPE, (5, 5, 5), 2)] = 1
    seg[_cube(SHAPE, (15, 20, 20), 3)] = 7
    targets = sample_targets(seg, np.random.default_rng(1), p_union=1.0, p_subregion=0.0)
    unions = [t for t in targets if t.kind == "union"]
    assert len(unions) == 1
    np.testing.assert_array_equal(unions[0].mask, (seg == 1) | (seg == 7))


def test_sample_targets_subregion_of_odd_cube_is_half_plus_centre():
    # A plane through the centre voxel of a 7^3 cube (generic normal) splits the other 342 voxels into mirror pairs,
    # one of each pair on each side; the centre itself is kept (>= 0): 342 / 2 + 1 = 172 voxels.
    seg = _cube(SHAPE, (10, 12, 14), 3).astype(np.int16)
    for seed in range(5):
        subs = [t for t in sample_targets(seg, np.random.default_rng(seed), p_subregion=1.0) if t.kind == "subregion"]
        assert len(subs) == 1
        assert subs[0].mask.sum() == 172 and not (subs[0].mask & (seg == 0)).any()


def test_sample_targets_subregion_of_two_component_class_can_be_one_component():
    a, b = _cube(SHAPE, (4, 4, 4), 2), _cube(SHAPE, (15, 20, 22), 3)
    seg = (a | b).astype(np.int16)
    exact = 0
    for seed in range(12):
        sub = [t for t in sample_targets(seg, np.random.default_rng(seed), p_subregion=1.0) if t.kind == "subregion"]
        assert not (sub[0].mask & ~(a | b)).any()
        exact += np.array_equal(sub[0].mask, a) or np.array_equal(sub[0].mask, b)
    assert 0 < exact < 12  # components half the time, plane cuts otherwise


def test_sample_targets_deterministic_and_capped():
    seg = _labelled_patch()
    kwargs = dict(lesion_label=11, p_union=0.5, p_subregion=0.5, max_targets=3)
    a = sample_targets(seg, np.random.default_rng(42), **kwargs)
    b = sample_targets(seg, np.random.default_rng(42), **kwargs)
    assert len(a) == 3 and [t.name for t in a] == [t.name for t in b]
    for ta, tb in zip(a, b, strict=True):
        np.testing.assert_array_equal(ta.mask, tb.mask)


def test_split_by_plane_axis_aligned():
    mask = _cube(SHAPE, (10, 12, 14), 3)
    half = split_by_plane(mask, (0, 1, 0), (0, 12, 0))  # keeps axis-1 indices 12..15: 4 of 7 slabs
    assert half.sum() == 7 * 4 * 7 and half[:, 12:16].sum() == half.sum()


def test_bad_inputs_raise_value_error():
    with pytest.raises(ValueError):
        first_click(np.zeros(SHAPE, dtype=bool))
    with pytest.raises(ValueError):
        next_click(np.zeros((4, 4, 4), dtype=bool), np.zeros((4, 4, 5), dtype=bool))
    with pytest.raises(ValueError):
        sample_targets(np.zeros((4, 4), dtype=np.int16), np.random.default_rng(0))
    with pytest.raises(ValueError):
        Target("x", np.zeros(SHAPE, dtype=bool), "organ")
    with pytest.raises(ValueError):  # float logits must be thresholded by the caller
        next_clicks_batch(np.zeros((1, *SHAPE)), np.zeros((1, *SHAPE), dtype=bool))
