"""What every trainer of this package shares with stock nnU-Net: class-attribute budgets and stock-loadable checkpoints.

``SegAnyPETTrainer`` and the ``nnUNetTrainer_seganypet_*`` baselines both derive from ``SeganypetBaseTrainer``, so a
promptable run and its baseline get identical budgets (the same ``budget`` dict) and identical checkpoint naming.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer
from nnunetv2.utilities.helpers import dummy_context
from torch._dynamo import OptimizedModule

import seganypet_nnunet
from seganypet_nnunet.checkpoint_io import CheckpointError, load_checkpoint
from seganypet_nnunet.cli_args import CUDA
from seganypet_nnunet.io_utils import atomic_path, plain

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
    #: Autocast dtype off cuda (None: fp32, nnU-Net's CPU behaviour). Tests set ``torch.bfloat16`` to run the
    #: cuda-only mixed-precision code path on the CPU (tests/trainers/test_autocast.py).
    cpu_autocast_dtype: ClassVar[torch.dtype | None] = None

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict, device: torch.device = CUDA):
        super().__init__(plans, configuration, fold, dataset_json, device)
        for name, value in self.budget.items():
            if not hasattr(self, name):
                raise KeyError(f"{type(self).__name__}.budget: {name!r} is not an nnUNetTrainer attribute")
            setattr(self, name, value)

    def amp_context(self):
        """nnU-Net's mixed precision for a forward pass + loss: ``autocast("cuda")`` (fp16; the GradScaler nnU-Net
        makes on cuda scales the backward) on cuda, none elsewhere unless ``cpu_autocast_dtype`` is set."""
        if self.device.type == "cuda":
            return torch.autocast("cuda", enabled=True)
        if self.cpu_autocast_dtype is not None:
            return torch.autocast(self.device.type, dtype=self.cpu_autocast_dtype)
        return dummy_context()

    #: Set by ``seganypet_train --trust_checkpoint``: ``load_checkpoint`` may then unpickle arbitrary objects.
    trust_checkpoint: bool = False

    def save_checkpoint(self, filename: str) -> None:
        """nnU-Net's checkpoint keys, renamed to ``nnUNetTrainer`` and tagged with our class, written ONCE atomically.

        Only tensors and plain Python types are stored (numpy scalars in nnU-Net's logging become floats), so
        ``torch.load(weights_only=True)`` reads the file.
        """
        if self.local_rank != 0 or self.disable_checkpointing:
            super().save_checkpoint(filename)  # nnU-Net's own no-op / log message
            return
        mod = self.network.module if self.is_ddp else self.network
        if isinstance(mod, OptimizedModule):
            mod = mod._orig_mod
        checkpoint = {
            "network_weights": mod.state_dict(),
            "optimizer_state": self.optimizer.state_dict(),
            "grad_scaler_state": self.grad_scaler.state_dict() if self.grad_scaler is not None else None,
            "logging": plain(self.logger.get_checkpoint()),
            "_best_ema": plain(self._best_ema),
            "current_epoch": self.current_epoch + 1,
            "init_args": plain(self.my_init_kwargs),
            "trainer_name": STOCK_TRAINER_NAME,
            "inference_allowed_mirroring_axes": plain(self.inference_allowed_mirroring_axes),
            "seganypet": {"trainer_class": type(self).__name__, "version": seganypet_nnunet.__version__},
        }
        with atomic_path(filename) as tmp:
            torch.save(checkpoint, tmp)

    def load_checkpoint(self, filename_or_checkpoint: dict | str) -> None:
        """nnU-Net's ``load_checkpoint``, but a file is read with ``checkpoint_io.load_checkpoint`` (weights_only)."""
        if isinstance(filename_or_checkpoint, dict):
            restore_checkpoint(self, filename_or_checkpoint, "<checkpoint>")
        else:
            checkpoint = load_checkpoint(
                filename_or_checkpoint, trusted=self.trust_checkpoint, map_location=self.device
            )
            restore_checkpoint(self, checkpoint, str(filename_or_checkpoint))


CHECKPOINT_KEYS = ("network_weights", "init_args", "current_epoch", "logging", "_best_ema", "optimizer_state")


def restore_checkpoint(trainer: nnUNetTrainer, checkpoint: dict, source: str) -> None:
    """The body of nnU-Net's ``nnUNetTrainer.load_checkpoint`` for an already-read checkpoint dict (any trainer).

    Raises:
        CheckpointError: ``checkpoint`` lacks nnU-Net's keys or its weights do not fit the trainer's network.
    """
    missing = [k for k in CHECKPOINT_KEYS if not isinstance(checkpoint, dict) or k not in checkpoint]
    if missing:
        raise CheckpointError(f"{source}: not an nnU-Net training checkpoint (missing {', '.join(missing)})")
    if not trainer.was_initialized:
        trainer.initialize()
    mod = trainer.network.module if trainer.is_ddp else trainer.network
    if isinstance(mod, OptimizedModule):
        mod = mod._orig_mod
    own = mod.state_dict().keys()
    weights = {
        k[7:] if k not in own and k.startswith("module.") else k: v for k, v in checkpoint["network_weights"].items()
    }
    try:
        mod.load_state_dict(weights)
    except RuntimeError as err:
        first = str(err).strip().splitlines()[0][:200]
        raise CheckpointError(f"{source}: network weights do not fit this trainer's network ({first})") from None
    trainer.my_init_kwargs = checkpoint["init_args"]
    trainer.current_epoch = checkpoint["current_epoch"]
    trainer.logger.load_checkpoint(checkpoint["logging"])
    trainer._best_ema = checkpoint["_best_ema"]
    trainer.inference_allowed_mirroring_axes = checkpoint.get(
        "inference_allowed_mirroring_axes", trainer.inference_allowed_mirroring_axes
    )
    trainer.optimizer.load_state_dict(checkpoint["optimizer_state"])
    if trainer.grad_scaler is not None and checkpoint.get("grad_scaler_state") is not None:
        trainer.grad_scaler.load_state_dict(checkpoint["grad_scaler_state"])


SKIP_IN_PRETRAINED = (".seg_layers.",)


def load_pretrained_weights(network: torch.nn.Module, path: str, trusted: bool = False, checkpoint=None) -> None:
    """nnU-Net's ``load_pretrained_weights`` (same keys and shape rule, segmentation layers skipped), but the file is
    read with ``checkpoint_io.load_checkpoint`` (or ``checkpoint`` already read from ``path`` is used) and a mismatch
    is a one-line CheckpointError instead of an assert."""
    checkpoint = load_checkpoint(path, trusted=trusted) if checkpoint is None else checkpoint
    pretrained = checkpoint.get("network_weights") if isinstance(checkpoint, dict) else None
    if not isinstance(pretrained, dict):
        raise CheckpointError(f"{path}: not an nnU-Net checkpoint (no 'network_weights' entry)")
    mod = network.module if hasattr(network, "module") else network
    if isinstance(mod, OptimizedModule):
        mod = mod._orig_mod
    own = mod.state_dict()
    for key, value in own.items():
        if any(s in key for s in SKIP_IN_PRETRAINED):
            continue
        if key not in pretrained:
            raise CheckpointError(f"{path}: pretrained weights lack {key!r}; they do not fit this network")
        if tuple(pretrained[key].shape) != tuple(value.shape):
            raise CheckpointError(
                f"{path}: {key!r} has shape {tuple(pretrained[key].shape)}, this network {tuple(value.shape)}"
            )
    own.update({k: v for k, v in pretrained.items() if k in own and not any(s in k for s in SKIP_IN_PRETRAINED)})
    mod.load_state_dict(own)
    print(f"loaded pretrained weights from {path}")
