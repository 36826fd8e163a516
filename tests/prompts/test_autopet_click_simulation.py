"""autoPET-style click JSON simulation on hand-made (z, y, x) arrays, spacing (2, 2, 2) mm.

Lesions: A z1-3 y1-3 x1-3 (27 voxels, centre (2, 2, 2)) and B z6 y6 x6-7 (2 voxels). PET: body = 1 everywhere, the
lesions 5, one hot spot z8-9 y1-2 x8-9 (8 voxels, 20 SUV) far from the lesions.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from seganypet_nnunet.prompts.autopet_click_simulation import simulate_autopet_clicks

SHAPE = (10, 10, 12)


def _case():
    lesions = np.zeros(SHAPE, bool)
    lesions[1:4, 1:4, 1:4] = True
    lesions[6, 6, 6:8] = True
    pet = np.ones(SHAPE)
    pet[lesions] = 5.0
    pet[8:10, 1:3, 8:10] = 20.0 + np.arange(8).reshape(2, 2, 2)  # its top voxels exceed the 99.75th percentile
    return lesions, pet


def test_tumour_and_background_clicks():
    lesions, pet = _case()
    out = simulate_autopet_clicks(lesions, pet, (2.0, 2.0, 2.0), np.random.default_rng(0))
    assert len(out["tumor"]) == 10 and len(out["background"]) == 10
    assert out["tumor"][0] == [2, 2, 2]  # (i, j, k) of A's centre (z, y, x) = (2, 2, 2)
    assert out["tumor"][1] in ([6, 6, 6], [7, 6, 6])  # B's EDT maximum (both voxels tie)
    border = lesions & ~ndimage.binary_erosion(lesions, border_value=0)
    for i, j, k in out["tumor"][2:]:  # fill-in clicks lie on lesion borders
        assert border[k, j, i]
    hot_i, hot_j, hot_k = out["background"][0]  # the single hot spot first
    assert 8 <= hot_i <= 9 and 1 <= hot_j <= 2 and 8 <= hot_k <= 9
    near = ndimage.binary_dilation(lesions, structure=np.ones((3, 3, 3), bool))
    assert not any(near[k, j, i] for i, j, k in out["background"])
    again = simulate_autopet_clicks(lesions, pet, (2.0, 2.0, 2.0), np.random.default_rng(0))
    assert again == out


def test_lesion_free_case_and_bad_shapes():
    lesions, pet = _case()
    out = simulate_autopet_clicks(np.zeros(SHAPE, bool), pet, (2.0, 2.0, 2.0), np.random.default_rng(1), n_background=3)
    assert out["tumor"] == [] and len(out["background"]) == 3
    with pytest.raises(ValueError, match="equal 3D"):
        simulate_autopet_clicks(lesions[:-1], pet, (2.0, 2.0, 2.0), np.random.default_rng(0))
