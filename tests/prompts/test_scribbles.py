"""Scribble simulator on hand-made (z, y, x) masks, spacing (z, y, x) = (3, 2, 1) mm.

Reference "lesion": z2 y4-6 x3-7 (15 voxels), z3 y3-7 x2-12 (55), z4 y4-6 x3-7 (15). With an empty prediction the
largest error is this whole FN component (85 voxels); its largest cross-section is z3. The in-plane EDT (mm) peaks
only at (y5, x7): 3 voxels x 2 mm to y2/y8 and 6 voxels x 1 mm to x1/x13 -> 6 mm; x spread (variance 10 mm^2) beats
y spread (variance 8 mm^2), so the line runs along x: x2-12 (11 voxels) when 30 mm long, x5-9 when 4 mm long.
"""

from __future__ import annotations

import numpy as np
import pytest

from seganypet_nnunet.prompts.scribbles import simulate_scribble

SHAPE = (6, 12, 16)
SPACING = (3.0, 2.0, 1.0)


def box(z, y, x) -> np.ndarray:
    m = np.zeros(SHAPE, bool)
    m[z[0] : z[1] + 1, y[0] : y[1] + 1, x[0] : x[1] + 1] = True
    return m


REF = box((2, 2), (4, 6), (3, 7)) | box((3, 3), (3, 7), (2, 12)) | box((4, 4), (4, 6), (3, 7))
EMPTY = np.zeros(SHAPE, bool)


def test_positive_scribble_on_largest_slice_along_principal_axis():
    s = simulate_scribble(EMPTY, REF, SPACING)
    assert s.positive and s.z == 3 and s.component_voxels == 85
    expected = np.zeros(SHAPE, bool)
    expected[3, 5, 2:13] = True
    np.testing.assert_array_equal(s.mask, expected)


def test_length_and_thickness():
    short = simulate_scribble(EMPTY, REF, SPACING, length_mm=4.0)
    expected = np.zeros(SHAPE, bool)
    expected[3, 5, 5:10] = True
    np.testing.assert_array_equal(short.mask, expected)
    thick = simulate_scribble(EMPTY, REF, SPACING, thickness=3)
    expected = np.zeros(SHAPE, bool)
    expected[3, 4:7, 2:13] = True
    np.testing.assert_array_equal(thick.mask, expected)


def test_negative_scribble_in_larger_false_positive():
    fp = box((0, 1), (0, 9), (14, 15))  # 2 x 10 x 2 = 40 voxels, bigger than the 10-voxel miss below
    pred = (REF & ~box((3, 3), (3, 7), (11, 12))) | fp
    s = simulate_scribble(pred, REF, SPACING)
    assert not s.positive and s.component_voxels == 40
    assert s.mask.any() and not (s.mask & ~fp).any()  # entirely inside the false positive
    assert s.z == 0  # equal areas on z0 and z1, mean z 0.5: the lower slice
    # the line follows the long y side of the 10 x 2 section: 10 voxels x 2 mm = 20 mm < 30 mm
    assert s.mask[0].sum() == 10 and set(np.argwhere(s.mask[0])[:, 0]) == set(range(10))


def test_no_error_no_scribble():
    assert simulate_scribble(REF, REF, SPACING) is None


def test_largest_2d_part_of_the_slice():
    # one 3D component whose best slice z1 has two 8-separated parts (joined through z2): the bigger part wins
    ref = box((1, 1), (0, 3), (0, 5)) | box((1, 1), (8, 9), (0, 1)) | box((2, 2), (0, 9), (0, 0))
    s = simulate_scribble(EMPTY, ref, SPACING)
    assert s.z == 1 and s.component_voxels == 24 + 4 + 10
    assert not (s.mask & ~box((1, 1), (0, 3), (0, 5))).any()


def test_seeded_scribbles_repeat_and_stay_inside_the_error():
    a = simulate_scribble(EMPTY, REF, SPACING, np.random.default_rng(7))
    b = simulate_scribble(EMPTY, REF, SPACING, np.random.default_rng(7))
    np.testing.assert_array_equal(a.mask, b.mask)
    for seed in range(10):
        s = simulate_scribble(EMPTY, REF, SPACING, np.random.default_rng(seed))
        assert s.positive and s.z == 3 and s.mask.any()
        assert not (s.mask & ~REF).any() and set(np.argwhere(s.mask)[:, 0]) == {3}
        ys, xs = np.argwhere(s.mask[3]).T
        assert np.hypot((ys.max() - ys.min()) * 2.0, (xs.max() - xs.min()) * 1.0) <= 30.0 + 1e-6


def test_bad_inputs():
    with pytest.raises(ValueError, match="equal shape"):
        simulate_scribble(EMPTY[:-1], REF, SPACING)
    with pytest.raises(ValueError, match="odd thickness"):
        simulate_scribble(EMPTY, REF, SPACING, thickness=2)
    with pytest.raises(ValueError, match="spacing"):
        simulate_scribble(EMPTY, REF, (1.0, 0.0, 1.0))
