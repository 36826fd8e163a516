"""PET-prior training prompts: which samples get the session's prior, and per-sample mask presence."""

from __future__ import annotations

import numpy as np
import torch

from seganypet_nnunet.trainers.prompt_training import ClickState, pet_prior_prompts


def test_pet_prior_prompts_only_for_hot_first_clicks():
    grids = np.ogrid[:24, :24, :24]
    sphere = sum((g - 12) ** 2 for g in grids) <= 9
    suv = np.ones((3, 24, 24, 24), np.float32)
    suv[0][sphere] = 9.0  # hot: gets the prior
    suv[1][sphere] = 3.0  # SUVmax 3 < 4: not hot
    suv[2][sphere] = 9.0  # hot, but its first prompt is a box
    state = ClickState(
        points=np.full((3, 1, 3), 12.0), labels=np.array([[1], [1], [-1]]), boxes=np.zeros((3, 2, 3)),
        box_mask=np.array([False, False, True]),
    )  # fmt: skip
    valid = np.ones(3, bool)
    priors, has = pet_prior_prompts(suv, state, valid, (2.0, 2.0, 2.0), None, 0.5)
    assert has.tolist() == [True, False, False] and np.array_equal(priors[0], sphere) and not priors[1:].any()
    none, has = pet_prior_prompts(suv, state, valid, (2.0, 2.0, 2.0), np.random.default_rng(0), 0.0)
    assert none is None and not has.any()
    prompts = state.to_prompts(torch.zeros((3, 1, 24, 24, 24)), torch.device("cpu"), (24, 24, 24), has | [0, 1, 0])
    assert prompts.mask_present.tolist() == [False, True, False]
    assert state.to_prompts(None, torch.device("cpu"), (24, 24, 24)).mask_present.tolist() == [False] * 3
