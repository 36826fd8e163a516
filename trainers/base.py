"""What every trainer of this package shares with stock nnU-Net: class-attribute budgets and stock-loadable checkpoints.

``SegAnyPETTrainer`` and the ``nnUNetTrainer_seganypet_*`` baselines both derive from ``SeganypetBaseTrainer``, so a
promptable run and its baseline get identical budgets (the same ``budget`` dict) and identical checkpoint naming.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

import seganypet_nnunet
from seganypet_nnunet.cli_args import CUDA
from seganypet_nnunet.io_utils import atomic_path

# Budgets shared by our variants and their baselines (keys are nnUNetTrainer attribute names).
TINY_BUDGET = {"num_epochs": 2, "num_iterations_per_epoch": 3, "num_val_iterations_per_epoch": 2, "save_every": 1}
# CPU demo (Small plans, 2 cores): about 4-5 min of training.
DEMO_BUDGET = {"num_epochs": 12, "num_iterations_per_epoch": 40, "num_val_iterations_per_epoch": 4, "save_every": 4}

STOCK_TRAINER_NAME = "nnUNetTrainer"


def tag_checkpoint(checkpoint: dict, trainer_class: str) -> dict:
    """Marks an nnU-Net checkpoint dict as stock-loadable: ``trainer_name = "nnUNetTrainer"`` (DESIGN.md, Checkpoints)
    and ``checkpoint["seganypet"] = {"trainer_class", "version"}``. Returns the same dict, changed in place."""
    checkpoint["trainer_name"] = STOCK_TRAINER_NAME
    checkpoint["seganypet"] = {"trainer_class": trainer_class, "version": seganypet_nnunet.__version__}
    return checkpoint


class SeganypetBaseTrainer(nnUNetTrainer):
    """nnUNetTrainer with a class-attribute budget and checkpoints that stock nnU-Net loads as ``nnUNetTrainer``.

    Checkpoints record ``trainer_name = "nnUNetTrainer"`` (valid because the network is built from the plans by the
    unchanged ``build_network_architecture``) and ``checkpoint["seganypet"] = {"trainer_class", "version"}``; see
    docs/DESIGN.md, "Checkpoints and stock nnU-Net".

    Attributes:
        budget: nnUNetTrainer attribute name -> value, applied after ``nnUNetTrainer.__init__`` (which assigns its own
            defaults as instance attributes, so plain class attributes with those names would be shadowed).
    """

    budget: ClassVar[dict[str, int]] = {}

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict, device: torch.device = CUDA):
        super().__init__(plans, configuration, fold, dataset_json, device)
        for name, value in self.budget.items():
            if not hasattr(self, name):
                raise KeyError(f"{type(self).__name__}.budget: {name!r} is not an nnUNetTrainer attribute")
            setattr(self, name, value)

    def save_checkpoint(self, filename: str) -> None:
        """nnU-Net's checkpoint, renamed to ``nnUNetTrainer`` and tagged with our class; written atomically."""
        if self.local_rank != 0 or self.disable_checkpointing:
            super().save_checkpoint(filename)  # nnU-Net's own no-op / log message
            return
        with atomic_path(filename) as tmp:
            super().save_checkpoint(str(tmp))
            checkpoint = torch.load(tmp, map_location="cpu", weights_only=False)
            checkpoint["trainer_name"] = STOCK_TRAINER_NAME
            checkpoint["seganypet"] = {"trainer_class": type(self).__name__, "version": seganypet_nnunet.__version__}
            torch.save(checkpoint, tmp)
