"""Helper of test_distributed.py: a test trainer, and the script torchrun runs (one process per rank).

    torchrun --standalone --nproc_per_node 2 tests/run/ddp_worker.py OUT DATASET PLANS [--c]

``SegAnyPETTrainer_ddptest`` is SegAnyPETTrainer_tiny (2 epochs x 2 iterations, no final validation) with
deterministic prompts (``prompt_rng = None``: interior-most
first click, evaluation-protocol correction clicks, the whole foreground as target, graded round 2) and three test
hooks: step 0 trains on a FIXED global batch (``fixed_batch``, this rank's slice of it); the gradients after the DDP
all-reduce of that step and the initial weights are written to OUT; the weights after every epoch are written to OUT
per rank. ``DDPTEST_KILL_AT=E`` makes rank 1 SIGKILL itself in the second iteration of epoch E.
"""

from __future__ import annotations

import os
import signal
import sys

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F

from seganypet_nnunet.trainers.variants import SegAnyPETTrainer_tiny

FIXED_SEED = 1234
CUDA = torch.device("cuda")


def fixed_batch(trainer, start: int, stop: int, global_batch: int = 2) -> dict:
    """Samples ``start:stop`` of a seeded global batch: PET-like data, two balls per sample, deep-supervision targets.

    Returns:
        ``{"data": (b, C, *patch), "target": [(b, 1, *scaled patch) per scale]}``, float32, network-input voxels.
    """
    patch = [int(p) for p in trainer.configuration_manager.patch_size]
    channels = trainer.num_input_channels
    g = torch.Generator().manual_seed(FIXED_SEED)
    data = torch.rand((global_batch, channels, *patch), generator=g) * 2
    grid = torch.stack(torch.meshgrid(*[torch.arange(n, dtype=torch.float32) for n in patch], indexing="ij"))
    seg = torch.zeros((global_batch, 1, *patch))
    for b in range(global_batch):
        for label, radius in ((3, 6.0), (2, 4.0)):
            centre = torch.rand(3, generator=g) * (torch.tensor(patch) - 2 * radius - 2) + radius + 1
            ball = ((grid - centre[:, None, None, None]) ** 2).sum(0) <= radius**2
            seg[b, 0][ball] = label
            data[b, 0][ball] += 4.0 * label
    targets = []
    for scale in trainer._get_deep_supervision_scales():
        size = [max(1, round(p * s)) for p, s in zip(patch, scale, strict=True)]
        targets.append(F.interpolate(seg, size=size, mode="nearest-exact"))
    return {"data": data[start:stop], "target": [t[start:stop] for t in targets]}


def _save(path: str, tensors: dict[str, torch.Tensor]) -> None:
    np.savez(path, **{k: v.detach().cpu().numpy() for k, v in tensors.items()})


class SegAnyPETTrainer_ddptest(SegAnyPETTrainer_tiny):
    """Deterministic prompts + fixed first batch + gradient / weight dumps (see module docstring)."""

    budget = {"num_epochs": 2, "num_iterations_per_epoch": 2, "num_val_iterations_per_epoch": 1, "save_every": 1}
    num_correction_rounds = 2
    graded_round = 2
    box_probability = 0.0

    def __init__(self, plans, configuration, fold, dataset_json, device=CUDA):
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.prompt_rng = None
        self.out = os.environ.get("DDPTEST_OUT")
        self.kill_at = int(os.environ.get("DDPTEST_KILL_AT", "-1"))
        self.steps_this_epoch = 0
        self.record_grads = False
        self.batch_slice: tuple[int, int] | None = None  # the one-process reference: which slice of the fixed batch

    @property
    def rank(self) -> int:
        return dist.get_rank() if self.is_ddp else 0

    def select_targets(self, seg: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        masks = seg[:, 0].detach().cpu().numpy() > 0
        return masks, masks.reshape(len(masks), -1).any(1)

    def on_epoch_start(self):
        super().on_epoch_start()
        self.steps_this_epoch = 0

    def train_step(self, batch: dict) -> dict:
        if self.current_epoch == self.kill_at and self.steps_this_epoch == 1 and self.rank == 1:
            os.kill(os.getpid(), signal.SIGKILL)
        first = self.current_epoch == 0 and self.steps_this_epoch == 0 and self.out is not None
        if first:
            world = dist.get_world_size() if self.is_ddp else 1
            sizes = [2 // world + (1 if i < 2 % world else 0) for i in range(world)]
            start = sum(sizes[: self.rank])
            batch = fixed_batch(self, *(self.batch_slice or (start, start + sizes[self.rank])))
            if self.rank == 0:
                _save(os.path.join(self.out, "initial_weights.npz"), self._module().state_dict())
        self.record_grads = first
        self.steps_this_epoch += 1
        return super().train_step(batch)

    def _all_reduce_gradients(self, params):
        super()._all_reduce_gradients(params)
        if self.record_grads:
            named = {n: p.grad for n, p in self._module().named_parameters() if p.grad is not None}
            _save(os.path.join(self.out, f"grads_rank{self.rank}.npz"), named)

    def perform_actual_validation(self, save_probabilities: bool = False):
        """Skipped (nnU-Net's own code; sliding-window prediction of the validation cases takes minutes here)."""

    def on_epoch_end(self):
        epoch = self.current_epoch
        super().on_epoch_end()
        if self.out is not None:
            _save(os.path.join(self.out, f"weights_rank{self.rank}_epoch{epoch}.npz"), self._module().state_dict())


if __name__ == "__main__":
    from seganypet_nnunet.run.train import train_with_class

    out, dataset, plans, *rest = sys.argv[1:]
    os.environ["DDPTEST_OUT"] = out
    train_with_class(
        SegAnyPETTrainer_ddptest,
        dataset,
        "3d_fullres",
        0,
        plans_identifier=plans,
        device=torch.device("cpu"),
        continue_training="--c" in rest,
    )
