"""SegAnyPETTrainer variants: budgets and options as class attributes only (baselines: ``baselines.py``)."""

from __future__ import annotations

from seganypet_nnunet.trainers.base import DEMO_BUDGET, TINY_BUDGET
from seganypet_nnunet.trainers.SegAnyPETTrainer import SegAnyPETTrainer


class SegAnyPETTrainer_tiny(SegAnyPETTrainer):
    """Tests: 2 epochs x 3 iterations, 2 validation iterations, checkpoint every epoch."""

    budget = TINY_BUDGET


class SegAnyPETTrainer_demo(SegAnyPETTrainer):
    """CPU demo budget with the Small plans; spleen is held out of the prompt targets (the demo's unseen structure)."""

    budget = DEMO_BUDGET
    heldout_labels = ("spleen",)


class SegAnyPETTrainer_5epochs(SegAnyPETTrainer):
    budget = {"num_epochs": 5}


class SegAnyPETTrainer_50epochs(SegAnyPETTrainer):
    budget = {"num_epochs": 50}


class SegAnyPETTrainer_250epochs(SegAnyPETTrainer):
    budget = {"num_epochs": 250}


class SegAnyPETTrainer_heldout_spleen(SegAnyPETTrainer):
    """Spleen is never a prompt target (zero-shot test of the prompted decoder)."""

    heldout_labels = ("spleen",)


class SegAnyPETTrainer_heldout_kidneys(SegAnyPETTrainer):
    """Both kidneys are never prompt targets."""

    heldout_labels = ("kidney_left", "kidney_right")


class SegAnyPETTrainer_heldout_spleen_tiny(SegAnyPETTrainer_heldout_spleen):
    budget = TINY_BUDGET


class SegAnyPETTrainer_noPetPrior(SegAnyPETTrainer):
    """Ablation: first clicks never get the PET prior as round 0's mask prompt (the recipe before issue 10)."""

    pet_prior_probability = 0.0


class SegAnyPETTrainer_demo_noPetPrior(SegAnyPETTrainer_demo):
    """The demo budget without PET-prior rounds (ablation of bench/bench_click_policy.py)."""

    pet_prior_probability = 0.0


class SegAnyPETTrainer_tiny_noMirroring(SegAnyPETTrainer_tiny):
    """TINY_BUDGET without mirroring (training augmentation and test-time): bench/gpu_check.py's tiny CPU mode, whose
    final validation and predictions would otherwise run every tile 8 times."""

    def configure_rotation_dummyDA_mirroring_and_inital_patch_size(self):
        rotation, dummy_2d, initial_patch_size, _ = super().configure_rotation_dummyDA_mirroring_and_inital_patch_size()
        self.inference_allowed_mirroring_axes = None
        return rotation, dummy_2d, initial_patch_size, None
