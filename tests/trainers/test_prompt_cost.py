"""Cheaper prompt path: the graded-round distribution and its importance weights keep the uniform recipe's loss."""

from __future__ import annotations

import numpy as np
import pytest

from seganypet_nnunet.trainers.prompt_cost import (
    CheapPromptMixin,
    SegAnyPETTrainer_decay05,
    SegAnyPETTrainer_decay05_overlap,
    round_probabilities,
)
from seganypet_nnunet.trainers.registry import TRAINERS


class _Uniform:
    """The draw of SegAnyPETTrainer.draw_graded_round (uniform, weight 1), for the mixin to override."""

    graded_round = None
    num_correction_rounds = 4

    def __init__(self, seed: int):
        self.prompt_rng = np.random.default_rng(seed)

    def draw_graded_round(self):
        if self.graded_round is not None:
            return self.graded_round, 1.0
        return int(self.prompt_rng.integers(self.num_correction_rounds + 1)), 1.0


class _Decay(CheapPromptMixin, _Uniform):
    round_decay = 0.5


def test_round_probabilities():
    np.testing.assert_allclose(round_probabilities(4, None), np.full(5, 0.2))
    p = round_probabilities(4, 0.5)
    np.testing.assert_allclose(p, np.array([16, 8, 4, 2, 1]) / 31)
    assert (p * np.arange(5)).sum() == pytest.approx(26 / 31)  # mean no-grad rounds: 0.84 instead of 2
    with pytest.raises(ValueError, match="round_decay"):
        round_probabilities(4, 0.0)


def test_importance_weights_keep_the_expected_loss_of_the_uniform_recipe():
    trainer = _Decay(seed=0)
    draws = [trainer.draw_graded_round() for _ in range(20000)]
    rounds = np.array([r for r, _ in draws])
    weights = np.array([w for _, w in draws])
    # E[w * 1{r = k}] = 1 / (R + 1) for every round k: each round's loss counts as in the uniform recipe
    per_round = [weights[rounds == k].sum() / len(draws) for k in range(5)]
    np.testing.assert_allclose(per_round, np.full(5, 0.2), atol=0.01)
    assert rounds.mean() == pytest.approx(26 / 31, abs=0.05)
    unweighted = type("_NoReweight", (_Decay,), {"reweight_rounds": False})(seed=0)
    assert {w for _, w in (unweighted.draw_graded_round() for _ in range(50))} == {1.0}


def test_fixed_graded_round_and_no_decay_fall_back_to_the_default_draw():
    fixed = type("_Fixed", (_Decay,), {"graded_round": 3})(seed=0)
    assert fixed.draw_graded_round() == (3, 1.0)
    plain = type("_Plain", (CheapPromptMixin, _Uniform), {})(seed=1)
    assert plain.draw_graded_round() == _Uniform(seed=1).draw_graded_round()


def test_variants_are_registered_for_seganypet_train():
    assert TRAINERS["SegAnyPETTrainer_decay05"] is SegAnyPETTrainer_decay05
    assert SegAnyPETTrainer_decay05_overlap.overlap_click_simulation and SegAnyPETTrainer_decay05_overlap.round_decay
