"""Cheaper prompt path for SegAnyPETTrainer: opt-in variants, the default recipe is unchanged.

Where a SegAnyPETTrainer step spends its time (bench/bench_prompt_step_breakdown.py; Tiny plans, 2-core CPU, noisy):
backward + step ~65 % (the backbone's backward plus the differentiated decoder round's), backbone forward ~16 %,
decoder passes ~14 % (on average ``R / 2`` no-grad rounds + 1 differentiated round, R = ``num_correction_rounds``),
numpy click simulation (targets, first prompts, correction clicks) ~2 %. Ratios against nnUNetTrainer:
bench/bench_train_throughput.py -variants. Two levers, each a class attribute:

- ``round_decay`` = q < 1: the differentiated round r is drawn with p(r) ~ q^r instead of uniformly, so fewer no-grad
  rounds run on average (R = 4: 2.0 -> 0.84 at q = 0.5). With ``reweight_rounds`` the round's loss is multiplied by
  ``(1 / (R + 1)) / p(r)`` (importance weight), which keeps the expected loss (and the expected gradient) of the
  uniform recipe: the same objective, estimated with more variance for late rounds. Without it, early rounds are
  trained more often (a different recipe).
- ``overlap_click_simulation``: target sampling and the first prompts (numpy; they need only the label patch) run in
  a worker thread while the backbone runs, instead of after it. This pays off where the backbone runs on a GPU (or
  where numpy releases the GIL); on a CPU-bound 2-core machine both compete for the same cores.

Click quality: changing the default needs a trained comparison (bench/bench_accuracy.py, clicks-vs-Dice) with the
same budget; until then these are variants.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
import torch

from seganypet_nnunet.trainers.prompt_training import ClickState
from seganypet_nnunet.trainers.SegAnyPETTrainer import SegAnyPETTrainer


def round_probabilities(num_rounds: int, decay: float | None) -> np.ndarray:
    """p(graded round = r), r = 0..num_rounds: uniform for ``decay`` None, else proportional to ``decay ** r``."""
    if decay is None:
        return np.full(num_rounds + 1, 1.0 / (num_rounds + 1))
    if not 0 < decay <= 1:
        raise ValueError(f"round_decay must be in (0, 1], got {decay}")
    p = decay ** np.arange(num_rounds + 1, dtype=np.float64)
    return p / p.sum()


class CheapPromptMixin:
    """Put before SegAnyPETTrainer in the bases; see the module docstring for the attributes."""

    round_decay: float | None = None
    reweight_rounds: bool = True
    overlap_click_simulation: bool = False

    def draw_graded_round(self) -> tuple[int, float]:
        if self.graded_round is not None or self.round_decay is None:
            return super().draw_graded_round()
        p = round_probabilities(self.num_correction_rounds, self.round_decay)
        r = int(self.prompt_rng.choice(len(p), p=p))
        return r, (1.0 / len(p)) / float(p[r]) if self.reweight_rounds else 1.0

    def train_step(self, batch: dict) -> dict:
        if not self.overlap_click_simulation:
            return super().train_step(batch)
        target = batch["target"]
        seg = (target[0] if isinstance(target, list) else target).detach().cpu()
        if not hasattr(self, "_click_pool"):
            self._click_pool = ThreadPoolExecutor(1, thread_name_prefix="click-sim")
        self._prepared: Future | None = self._click_pool.submit(super().first_prompts, seg)
        try:
            return super().train_step(batch)
        finally:
            self._prepared = None

    def first_prompts(self, seg: torch.Tensor) -> tuple[np.ndarray, np.ndarray, ClickState]:
        prepared = getattr(self, "_prepared", None)
        return prepared.result() if prepared is not None else super().first_prompts(seg)


class SegAnyPETTrainer_decay05(CheapPromptMixin, SegAnyPETTrainer):
    """Graded round ~ 0.5^r, importance-weighted (same expected loss; 0.84 instead of 2 no-grad rounds, R = 4)."""

    round_decay = 0.5


class SegAnyPETTrainer_overlap(CheapPromptMixin, SegAnyPETTrainer):
    """Target sampling + first prompts in a thread, overlapped with the backbone."""

    overlap_click_simulation = True


class SegAnyPETTrainer_decay05_overlap(CheapPromptMixin, SegAnyPETTrainer):
    """Both levers."""

    round_decay = 0.5
    overlap_click_simulation = True


class SegAnyPETTrainer_2rounds(SegAnyPETTrainer):
    """Ablation: 2 correction rounds instead of 4 (a different recipe: fewer correction clicks in training)."""

    num_correction_rounds = 2
