"""Multi-process training on torch.distributed: torchrun's env:// rendezvous, gloo on CPU, nccl on cuda.

One process per rank. ``torchrun`` (or ``srun torchrun`` on SLURM) sets ``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``,
``LOCAL_WORLD_SIZE``, ``MASTER_ADDR`` and ``MASTER_PORT``; ``seganypet_train`` sees them and runs ``run_rank`` instead
of the single-process path. ``-num_gpus N`` (single node, ``mp.spawn``) sets the same variables per child and calls
the same function, so both launchers share one code path.

Rank conventions (nnU-Net's): the trainer's ``local_rank`` attribute is the GLOBAL rank (``dist.get_rank()``), so
checkpoints, logs and the final validation summary are written by global rank 0 only; the device index comes from
``LOCAL_RANK`` (``DistributedTrainerMixin`` in ``trainers/distributed.py``). ``--c`` makes every rank load the same
``checkpoint_latest.pth`` (nnU-Net's ``maybe_load_checkpoint``), so all ranks resume from identical weights.

Failure: a rank that dies (exception, OOM, SIGKILL) makes the others fail fast. Under torchrun the agent stops the
surviving workers and exits non-zero naming the failed rank; without an agent, gloo / nccl collectives raise when a
peer's connection closes, and at the latest after ``SEGANYPET_DIST_TIMEOUT`` seconds (default 1800, as
torch's default). Each failing rank prints one line ``seganypet_train: rank R/W failed: ...`` before re-raising.
"""

from __future__ import annotations

import os
import sys
from datetime import timedelta
from typing import Mapping, Union

import torch
import torch.distributed as dist

from seganypet_nnunet.errors import SeganypetError
from seganypet_nnunet.trainers.distributed import REQUIRED_ENV, RankInfo, rank_device

TIMEOUT_ENV = "SEGANYPET_DIST_TIMEOUT"
DEFAULT_TIMEOUT_S = 1800.0


def launched_by_torchrun(environ: Mapping[str, str] = os.environ) -> bool:
    """True when torchrun's rendezvous variables are present (this process is one rank of a job)."""
    return all(k in environ for k in REQUIRED_ENV)


def timeout_from_env(environ: Mapping[str, str] = os.environ) -> timedelta:
    """Collective timeout: ``$SEGANYPET_DIST_TIMEOUT`` seconds, default 1800."""
    raw = environ.get(TIMEOUT_ENV, str(DEFAULT_TIMEOUT_S))
    try:
        seconds = float(raw)
    except ValueError:
        raise SeganypetError(f"{TIMEOUT_ENV}={raw!r} is not a number of seconds") from None
    if seconds <= 0:
        raise SeganypetError(f"{TIMEOUT_ENV}={raw!r} must be > 0")
    return timedelta(seconds=seconds)


def init_process_group(device: torch.device, info: RankInfo, timeout: timedelta | None = None) -> torch.device:
    """Joins the job (env:// rendezvous): nccl on cuda, gloo on cpu; returns this rank's device.

    On CPU, torch threads are ``OMP_NUM_THREADS`` if set (torchrun sets 1), else the cores / ranks per node.
    """
    dev = rank_device(device, info)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    else:
        threads = os.environ.get("OMP_NUM_THREADS")
        n = int(threads) if threads else max(1, (os.cpu_count() or 1) // info.local_world_size)
        torch.set_num_threads(n)
    dist.init_process_group(
        "nccl" if dev.type == "cuda" else "gloo",
        init_method="env://",
        rank=info.rank,
        world_size=info.world_size,
        timeout=timeout or timeout_from_env(),
    )
    return dev


def run_rank(
    trainer_class: type,
    dataset_name_or_id: Union[str, int],
    configuration: str,
    fold: Union[int, str],
    plans_identifier: str,
    device: torch.device,
    run_kwargs: dict,
) -> None:
    """One rank: init the process group, build the (DDP-capable) trainer, train / validate, leave the group.

    Args:
        trainer_class: an nnUNetTrainer subclass; wrapped by ``ddp_capable`` (same name, so the same output folder).
        dataset_name_or_id / configuration / fold / plans_identifier: as ``train_with_class``.
        device: cuda or cpu; each rank uses ``rank_device``.
        run_kwargs: keyword arguments of ``seganypet_nnunet.run.training.run_trainer`` (``continue_training`` ...).
    """
    from seganypet_nnunet.run.training import build_trainer, run_trainer
    from seganypet_nnunet.trainers.distributed import ddp_capable

    info = RankInfo.from_env()
    dev = init_process_group(device, info)
    try:
        trainer = build_trainer(
            trainer_class=ddp_capable(trainer_class),
            dataset_name_or_id=dataset_name_or_id,
            configuration=configuration,
            fold=fold,
            plans_identifier=plans_identifier,
            continue_training=run_kwargs["continue_training"],
            device=dev,
        )
        run_trainer(trainer=trainer, **run_kwargs)
    except BaseException as e:  # no destroy_process_group here: it can block on a dead peer (nccl)
        print(
            f"seganypet_train: rank {info.rank}/{info.world_size} failed: {type(e).__name__}: {e} "
            "(if another rank died first, its error is the cause)",
            file=sys.stderr,
            flush=True,
        )
        raise
    dist.destroy_process_group()


def spawned_rank(local_rank: int, world_size: int, *args) -> None:
    """``mp.spawn`` target of ``-num_gpus``: torchrun's variables for a single node, then ``run_rank``."""
    os.environ.update(
        RANK=str(local_rank), LOCAL_RANK=str(local_rank), WORLD_SIZE=str(world_size), LOCAL_WORLD_SIZE=str(world_size)
    )
    run_rank(*args)
