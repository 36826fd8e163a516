"""DDP on any node and on CPU: what nnUNetTrainer assumes (one node, cuda) replaced by torchrun's view of the job.

nnUNetTrainer (2.8.1), when ``dist.is_initialized()`` at construction, sets ``local_rank = dist.get_rank()`` (the
GLOBAL rank; kept: "rank 0 writes" stays correct on many nodes), forces ``device = cuda:<global rank>`` and wraps
``DDP(network, device_ids=[global rank])``. That is wrong on every node but the first and impossible on CPU (gloo: DDP
takes no device ids). ``DistributedTrainerMixin`` keeps nnU-Net's per-rank batch split, oversampling, DDP-aware Dice
and deep-supervision weights, and only fixes the device (``cuda:LOCAL_RANK`` or ``cpu``), the GradScaler (cuda only)
and the DDP wrap.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping

import torch
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer
from torch.nn.parallel import DistributedDataParallel as DDP

from seganypet_nnunet.errors import SeganypetError

CUDA = torch.device("cuda")  # nnU-Net's default device
#: torchrun's rendezvous variables (``run/distributed.py`` launches the job; ranks read their place from them here)
REQUIRED_ENV = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


@dataclass(frozen=True)
class RankInfo:
    """Where this process sits in the job (from torchrun's environment variables).

    Attributes:
        rank: global rank, 0..world_size-1.
        local_rank: rank on this node (cuda device index).
        world_size: number of processes in the job.
        local_world_size: processes on this node (CPU threads are split among them).
    """

    rank: int
    local_rank: int
    world_size: int
    local_world_size: int

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> RankInfo:
        """Reads torchrun's variables; ValueError naming the variable when one is missing or inconsistent."""
        missing = [k for k in REQUIRED_ENV if k not in environ]
        if missing:
            raise SeganypetError(
                f"distributed launch: environment variable(s) {', '.join(missing)} not set (use torchrun)"
            )
        world = int(environ["WORLD_SIZE"])
        info = cls(
            rank=int(environ["RANK"]),
            local_rank=int(environ["LOCAL_RANK"]),
            world_size=world,
            local_world_size=int(environ.get("LOCAL_WORLD_SIZE", world)),
        )
        if not 0 <= info.rank < world or not 0 <= info.local_rank < info.local_world_size:
            raise SeganypetError(f"distributed launch: inconsistent ranks {info}")
        return info


def rank_device(device: torch.device, info: RankInfo) -> torch.device:
    """This rank's device: ``cuda:LOCAL_RANK`` for cuda, ``cpu`` for cpu; other devices have no DDP backend."""
    if device.type == "cuda":
        if torch.cuda.device_count() <= info.local_rank:
            raise SeganypetError(
                f"rank {info.rank}: LOCAL_RANK {info.local_rank} but only {torch.cuda.device_count()} cuda device(s)"
            )
        return torch.device("cuda", info.local_rank)
    if device.type == "cpu":
        return torch.device("cpu")
    raise SeganypetError(f"distributed training needs -device cuda (nccl) or cpu (gloo), got {device.type}")


class DistributedTrainerMixin:
    """Put first in the bases of an nnUNetTrainer subclass; a no-op outside DDP."""

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict, device: torch.device = CUDA):
        super().__init__(plans, configuration, fold, dataset_json, device)
        if self.is_ddp:
            self.device = rank_device(device, RankInfo.from_env())
            if self.device.type != "cuda":
                self.grad_scaler = None  # nnU-Net made one for the cuda device it assumed
            self.print_to_log_file(f"DDP: rank {self.local_rank}, device {self.device}", also_print_to_console=False)

    def initialize(self) -> None:
        """nnU-Net's ``initialize`` with its DDP wrap replaced by one that names this rank's device (or none on CPU)."""
        if self.was_initialized or not self.is_ddp:
            return super().initialize()
        self._set_batch_size_and_oversample()  # nnU-Net's per-rank split of the global batch
        per_rank = (self.batch_size, self.oversample_foreground_percent)
        self.is_ddp = False  # nnU-Net's initialize would wrap DDP(device_ids=[global rank]); we wrap below
        try:
            super().initialize()
        finally:
            self.is_ddp = True
        self.batch_size, self.oversample_foreground_percent = per_rank
        self.network = torch.nn.SyncBatchNorm.convert_sync_batchnorm(self.network)
        self.network = DDP(self.network, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        self.loss = self._build_loss()  # DDP-aware (all-gathered batch Dice, last deep-supervision weight 1e-6)


def ddp_capable(trainer_class: type[nnUNetTrainer]) -> type[nnUNetTrainer]:
    """``trainer_class`` itself if it has the mixin, else a subclass of the SAME name with it (same output folder)."""
    if issubclass(trainer_class, DistributedTrainerMixin):
        return trainer_class
    return type(
        trainer_class.__name__,
        (DistributedTrainerMixin, trainer_class),
        {"__module__": trainer_class.__module__, "__qualname__": trainer_class.__qualname__},
    )
