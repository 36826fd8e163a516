"""``seganypet_train``: nnUNetv2_train's grammar and results layout, with trainer CLASSES from our registry.

nnU-Net's own launcher resolves ``-tr`` by name inside nnunetv2, which breaks on machines whose torchvision cannot be
imported (a CUDA build of torchvision on a CPU torch). This one passes class objects and otherwise reuses nnU-Net's
functions (``find_free_network_port``, DDP setup). Checkpoints (``--c``, ``--val``, ``--val_best``,
``-pretrained_weights``) are read only through ``checkpoint_io.load_checkpoint`` (weights_only; ``--trust_checkpoint``
opts in for trusted files), never through nnU-Net's ``torch.load(weights_only=False)``.
"""

from __future__ import annotations

import os
from typing import Union

import torch

from seganypet_nnunet.cli_args import CUDA, DEFAULT_PLANS
from seganypet_nnunet.errors import SeganypetError, cli_entry
from seganypet_nnunet.run.training import (
    build_trainer,
    check_preprocessed_data,
    check_run_flags,
    preflight_checkpoints,
    resolve_training,
    run_trainer,
)

_run = run_trainer  # the earlier name (tests and benches import it from here)


def train_with_class(
    trainer_class: type,
    dataset_name_or_id: Union[str, int],
    configuration: str,
    fold: Union[int, str],
    *,
    plans_identifier: str = DEFAULT_PLANS,
    device: torch.device = CUDA,
    continue_training: bool = False,
    only_run_validation: bool = False,
    export_validation_probabilities: bool = False,
    pretrained_weights: str | None = None,
    num_gpus: int = 1,
    val_with_best: bool = False,
    disable_checkpointing: bool = False,
    trust_checkpoint: bool = False,
):
    """Trains ``trainer_class`` like ``nnUNetv2_train`` into ``$nnUNet_results/DatasetXXX/<Trainer>__<Plans>__<cfg>/``.

    Args:
        trainer_class: an nnUNetTrainer subclass (class object, not a name).
        dataset_name_or_id: "901" / 901 / "Dataset901_Name".
        configuration: plans configuration, e.g. "3d_fullres".
        fold: 0..4 or "all".
        plans_identifier: plans file name without ".json".
        device: torch device (``cli_args.make_device`` applies nnU-Net's thread settings).
        continue_training / only_run_validation / export_validation_probabilities / pretrained_weights /
        val_with_best / disable_checkpointing: nnUNetv2_train's ``--c`` / ``--val`` / ``--npz`` /
        ``-pretrained_weights`` / ``--val_best`` / ``--disable_checkpointing``.
        num_gpus: > 1 spawns one DDP process per GPU (cuda only, one node).
        trust_checkpoint: read checkpoints with the full unpickler (``--trust_checkpoint``; trusted files only).

    Under torchrun (its RANK / WORLD_SIZE / MASTER_* variables set) this process is one rank of a multi-process job:
    see ``seganypet_nnunet.run.distributed`` (gloo on cpu, nccl on cuda; ``num_gpus`` is ignored).

    Returns:
        the trainer after validation (single process), None for DDP.
    """
    from seganypet_nnunet.run import distributed

    run_kwargs = dict(
        continue_training=continue_training,
        only_run_validation=only_run_validation,
        pretrained_weights=pretrained_weights,
        export_validation_probabilities=export_validation_probabilities,
        val_with_best=val_with_best,
        disable_checkpointing=disable_checkpointing,
        trust_checkpoint=trust_checkpoint,
    )
    check_run_flags(continue_training, only_run_validation, pretrained_weights, val_with_best, disable_checkpointing)
    if not isinstance(num_gpus, int) or num_gpus < 1:
        raise SeganypetError(f"-num_gpus {num_gpus}: must be >= 1")
    if num_gpus > 1 and torch.device(device).type != "cuda":
        raise SeganypetError(f"-num_gpus {num_gpus}: several GPUs need -device cuda (got -device {device})")
    folder, plans, checked_fold = resolve_training(dataset_name_or_id, configuration, fold, plans_identifier)
    preflight_checkpoints(
        trainer_class, dataset_name_or_id, configuration, fold, plans_identifier, **run_kwargs
    )  # unsafe or missing checkpoints are refused before the trainer writes its log
    check_preprocessed_data(folder, plans, configuration, checked_fold)  # a half-written folder: one line
    job = (trainer_class, str(dataset_name_or_id), configuration, fold, plans_identifier, device, run_kwargs)
    if distributed.launched_by_torchrun():
        distributed.run_rank(*job)
        return None
    if num_gpus > 1:
        import torch.multiprocessing as mp
        from nnunetv2.run.run_training import find_free_network_port

        if device.type != "cuda":
            raise ValueError(f"DDP training (num_gpus > 1) needs -device cuda, got {device.type}")
        os.environ["MASTER_ADDR"] = "localhost"
        os.environ.setdefault("MASTER_PORT", str(find_free_network_port()))
        mp.spawn(distributed.spawned_rank, args=(num_gpus, *job), nprocs=num_gpus, join=True)
        return None
    trainer = build_trainer(
        trainer_class, dataset_name_or_id, configuration, fold, plans_identifier, continue_training, device
    )
    run_trainer(trainer, **run_kwargs)
    return trainer


@cli_entry("seganypet_train")
def train_entry(argv: list[str] | None = None) -> None:
    """Console script ``seganypet_train`` (nnUNetv2_train's flags)."""
    import argparse

    from seganypet_nnunet.cli_args import (
        DEFAULT_TRAINER,
        add_device_argument,
        add_plans_argument,
        add_trust_checkpoint_argument,
        device_from_args,
    )
    from seganypet_nnunet.trainers.registry import TRAINERS, get_trainer_class

    p = argparse.ArgumentParser(description="Train a SegAnyPET / baseline trainer with nnU-Net's layout.")
    p.add_argument("dataset_name_or_id", type=str, help="Dataset name or ID to train with")
    p.add_argument("configuration", type=str, help="Configuration that should be trained")
    p.add_argument("fold", type=str, help="Fold of the 5-fold cross-validation (0-4) or 'all'")
    p.add_argument("-tr", default=DEFAULT_TRAINER, help=f"[OPTIONAL] trainer class, one of: {', '.join(TRAINERS)}")
    add_plans_argument(p)
    p.add_argument(
        "-pretrained_weights",
        default=None,
        help="[OPTIONAL] nnU-Net or released SAM-Med3D / SegAnyPET checkpoint to start from",
    )
    p.add_argument("-num_gpus", type=int, default=1, help="[OPTIONAL] number of GPUs (DDP)")
    p.add_argument("--npz", action="store_true", help="[OPTIONAL] save validation probabilities (.npz)")
    p.add_argument("--c", action="store_true", help="[OPTIONAL] continue training from the latest checkpoint")
    p.add_argument("--val", action="store_true", help="[OPTIONAL] only run the final validation")
    p.add_argument("--val_best", action="store_true", help="[OPTIONAL] validate with checkpoint_best.pth")
    p.add_argument("--disable_checkpointing", action="store_true", help="[OPTIONAL] write no checkpoints")
    add_device_argument(p)
    add_trust_checkpoint_argument(p, " (--c, -pretrained_weights)")
    a = p.parse_args(argv)
    if a.tr not in TRAINERS:
        raise SeganypetError(f"-tr {a.tr!r}: unknown trainer; valid names: {', '.join(sorted(TRAINERS))}")
    train_with_class(
        get_trainer_class(a.tr),
        a.dataset_name_or_id,
        a.configuration,
        a.fold,
        plans_identifier=a.p,
        device=device_from_args(a),
        continue_training=a.c,
        only_run_validation=a.val,
        export_validation_probabilities=a.npz,
        pretrained_weights=a.pretrained_weights,
        num_gpus=a.num_gpus,
        val_with_best=a.val_best,
        disable_checkpointing=a.disable_checkpointing,
        trust_checkpoint=a.trust_checkpoint,
    )


if __name__ == "__main__":
    train_entry()
