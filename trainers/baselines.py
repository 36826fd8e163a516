"""Stock-nnU-Net baselines with the same budgets as our variants (automatic Dice+CE training only, no prompts).

Run them on the baseline plans (``nnUNetPlans[Small|Tiny]``) or on ``SegAnyPETPlans*`` (same backbone; the prompt head
then stays untrained). Checkpoints load in stock ``nnUNetv2_predict`` on any machine (see ``SeganypetBaseTrainer``).
"""

from __future__ import annotations

from seganypet_nnunet.trainers.base import DEMO_BUDGET, TINY_BUDGET, SeganypetBaseTrainer


class nnUNetTrainer_seganypet(SeganypetBaseTrainer):
    """nnUNetTrainer's defaults (1000 epochs x 250 iterations), stock-named checkpoints."""


class nnUNetTrainer_seganypet_tiny(nnUNetTrainer_seganypet):
    """Budget of SegAnyPETTrainer_tiny (tests)."""

    budget = TINY_BUDGET


class nnUNetTrainer_seganypet_demo(nnUNetTrainer_seganypet):
    """Budget of SegAnyPETTrainer_demo (CPU demo)."""

    budget = DEMO_BUDGET


class nnUNetTrainer_seganypet_5epochs(nnUNetTrainer_seganypet):
    budget = {"num_epochs": 5}


class nnUNetTrainer_seganypet_50epochs(nnUNetTrainer_seganypet):
    budget = {"num_epochs": 50}


class nnUNetTrainer_seganypet_250epochs(nnUNetTrainer_seganypet):
    budget = {"num_epochs": 250}
