"""pet_regions.region_box: morphology on the region's box (+ margin) equals the same on the whole image."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from seganypet_nnunet.inference import click_policy as P
from seganypet_nnunet.prompts import pet_regions as R


def _full_contrast(suv, region, shell_voxels=2):
    shell = ndimage.binary_dilation(region, np.ones((3, 3, 3), bool), iterations=shell_voxels) & ~region
    return float(suv[region].mean()) / float(suv[shell].mean())


def test_contrast_and_prior_on_the_box_equal_the_whole_image():
    rng = np.random.default_rng(0)
    suv = rng.uniform(0.5, 1.5, (40, 30, 35)).astype(np.float32)
    for centre in ((20, 15, 17), (1, 1, 33), (38, 28, 0)):  # inside, and touching image borders
        region = np.zeros(suv.shape, bool)
        zz, yy, xx = np.ogrid[:40, :30, :35]
        region |= (zz - centre[0]) ** 2 + (yy - centre[1]) ** 2 + (xx - centre[2]) ** 2 < 12
        assert R.contrast(suv, region) == _full_contrast(suv, region)
        box = R.region_box(region, 2)
        assert region[box].sum() == region.sum()
    hot = suv.copy()
    hot[18:23, 13:18, 15:20] = 12.0
    hot[20, 15, 17] = 1.0  # a hole the prior's fill closes
    for seed in ((20, 15, 17), (17, 15, 17), (5, 5, 5)):
        got = P.pet_prior(hot, seed, (2.0, 2.0, 2.0), P.DEFAULT_POLICY)
        peak = R.local_max(hot, seed, (2.0, 2.0, 2.0))
        region = R.grow(hot >= P.DEFAULT_POLICY.prior_fraction * peak.value, peak.index)
        near = ndimage.binary_dilation(ndimage.binary_fill_holes(region), np.ones((3, 3, 3), bool))
        want = peak.value >= P.DEFAULT_POLICY.prior_min_suvmax and near[seed]
        assert (got is not None) == bool(want)
