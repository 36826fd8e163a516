"""PET reader regions on hand-made SUV volumes with known answers (array (z, y, x), spacing mm (z, y, x))."""

from __future__ import annotations

import numpy as np
import pytest

from seganypet_nnunet.prompts import pet_regions as R

SPACING = (2.0, 1.0, 1.0)


def _ball(shape, centre, radius_mm, spacing=SPACING):
    grids = np.ogrid[tuple(slice(0, n) for n in shape)]
    d2 = sum(((g - c) * s) ** 2 for g, c, s in zip(grids, centre, spacing, strict=True))
    return d2 <= radius_mm**2


def test_local_max_respects_radius_and_spacing():
    suv = np.ones((20, 40, 40), np.float32)
    suv[10, 20, 30] = 9.0  # 10 mm from the seed along x
    suv[17, 20, 20] = 20.0  # 14 mm from the seed along z (7 voxels of 2 mm)
    peak = R.local_max(suv, (10, 20, 20), SPACING, radius_mm=12.0)
    assert (peak.value, peak.index) == (9.0, (10, 20, 30))
    peak = R.local_max(suv, (10, 20, 20), SPACING, radius_mm=15.0)
    assert (peak.value, peak.index) == (20.0, (17, 20, 20))


def test_fraction_region_from_click_and_from_hottest():
    suv = np.full((20, 40, 40), 0.5, np.float32)
    sphere = _ball(suv.shape, (10, 20, 20), 6.0)
    suv[sphere] = 10.0
    inside = R.fraction_region(suv, (10, 20, 21), SPACING, 0.41)
    assert np.array_equal(inside, sphere)
    outside = (10, 20, 28)  # 8 mm from the centre: background, the hot sphere within 15 mm
    assert not R.fraction_region(suv, outside, SPACING, 0.41).any()
    assert np.array_equal(R.fraction_region(suv, outside, SPACING, 0.41, from_hottest=True), sphere)


def test_fraction_thresholds_cut_a_graded_lesion_where_expected():
    suv = np.full((20, 40, 40), 0.2, np.float32)
    core, rim = _ball(suv.shape, (10, 20, 20), 3.0), _ball(suv.shape, (10, 20, 20), 6.0)
    suv[rim] = 4.5  # 45 % of the core's 10
    suv[core] = 10.0
    assert np.array_equal(R.fraction_region(suv, (10, 20, 20), SPACING, 0.41), rim)
    assert np.array_equal(R.fraction_region(suv, (10, 20, 20), SPACING, 0.50), core)


def test_absolute_region_keeps_only_the_seed_component():
    suv = np.zeros((10, 30, 30), np.float32)
    suv[2:5, 5:10, 5:10] = 3.0
    suv[2:5, 20:25, 20:25] = 3.0  # a second, disconnected hot region
    region = R.absolute_region(suv, (3, 7, 7), 2.5)
    assert region.sum() == 75 and not region[3, 22, 22]
    assert not R.absolute_region(suv, (3, 7, 7), 4.0).any()  # seed below the threshold: empty


def test_contrast_over_a_two_voxel_shell():
    suv = np.ones((12, 12, 12), np.float32)
    region = np.zeros(suv.shape, bool)
    region[5:7, 5:7, 5:7] = True
    suv[region] = 8.0
    suv[3:9, 3:9, 3:9][~region[3:9, 3:9, 3:9]] = 2.0  # the 2-voxel shell
    assert R.contrast(suv, region) == pytest.approx(4.0)
    suv[:] = 0.0
    suv[region] = 1.0
    assert R.contrast(suv, region) == float("inf")


def test_liver_threshold_and_sphere_voi():
    suv = np.zeros((10, 10, 10), np.float32)
    liver = np.zeros(suv.shape, bool)
    liver[:, :, :5] = True
    suv[:, :, :5] = np.where(np.arange(10)[None, :, None] % 2 == 0, 1.0, 3.0)  # mean 2, SD 1
    assert R.liver_threshold(suv, liver) == pytest.approx(1.5 * 2 + 2 * 1)
    with pytest.raises(ValueError, match="empty"):
        R.liver_threshold(suv, np.zeros(suv.shape, bool))
    voi = R.sphere_voi((20, 40, 40), (10, 20, 20), SPACING, 6.0)
    assert np.array_equal(voi, _ball((20, 40, 40), (10, 20, 20), 6.0))
