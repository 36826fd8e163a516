"""``seganypet_train``: nnUNetv2_train's grammar and results layout, with trainer CLASSES from our registry.

nnU-Net's own launcher resolves ``-tr`` by name inside nnunetv2, which breaks on machines whose torchvision cannot be
imported (reference notes, nnunet_on_cpu.md §4.3). This one passes class objects and otherwise reuses nnU-Net's
functions (``maybe_load_checkpoint``, ``find_free_network_port``, DDP setup).
"""

from __future__ import annotations

import multiprocessing
import os
from typing import Union

import torch

DEVICES = ("cpu", "cuda", "mps")
CUDA = torch.device("cuda")  # nnU-Net's default device


def make_device(name: str) -> torch.device:
    """``-device`` string -> torch.device, with nnU-Net's thread settings (all cores on CPU, 1 thread on cuda)."""
    if name not in DEVICES:
        raise ValueError(f"-device must be one of {', '.join(DEVICES)}, got {name!r}")
    if name == "cpu":
        torch.set_num_threads(multiprocessing.cpu_count())
    elif name == "cuda":
        torch.set_num_threads(1)
        torch.set_num_interop_threads(1)
    return torch.device(name)


def build_trainer(
    trainer_class: type,
    dataset_name_or_id: Union[str, int],
    configuration: str,
    fold: Union[int, str],
    plans_identifier: str,
    continue_training: bool = False,
    device: torch.device = CUDA,
):
    """nnU-Net's ``get_trainer_from_args`` for a class object: loads plans + dataset.json from nnUNet_preprocessed."""
    from batchgenerators.utilities.file_and_folder_operations import join, load_json
    from nnunetv2.paths import nnUNet_preprocessed
    from nnunetv2.utilities.dataset_name_id_conversion import maybe_convert_to_dataset_name

    folder = join(nnUNet_preprocessed, maybe_convert_to_dataset_name(str(dataset_name_or_id)))
    plans_file = join(folder, plans_identifier + ".json")
    if not os.path.isfile(plans_file):
        raise FileNotFoundError(f"plans file {plans_file} not found: run seganypet_plan_and_preprocess first")
    plans = load_json(plans_file)
    plans["continue_training"] = continue_training
    fold = fold if fold == "all" else int(fold)
    return trainer_class(
        plans=plans,
        configuration=configuration,
        fold=fold,
        dataset_json=load_json(join(folder, "dataset.json")),
        device=device,
    )


def _run(
    trainer,
    continue_training: bool,
    only_run_validation: bool,
    pretrained_weights: str | None,
    export_validation_probabilities: bool,
    val_with_best: bool,
    disable_checkpointing: bool,
) -> None:
    """The part of nnU-Net's run_training / run_ddp after the trainer exists."""
    from nnunetv2.run.run_training import maybe_load_checkpoint
    from torch.backends import cudnn

    if continue_training and only_run_validation:
        raise ValueError("--c and --val cannot be used together")
    if val_with_best and disable_checkpointing:
        raise ValueError("--val_best is not compatible with --disable_checkpointing")
    trainer.disable_checkpointing = disable_checkpointing
    maybe_load_checkpoint(trainer, continue_training, only_run_validation, pretrained_weights)
    if torch.cuda.is_available():
        cudnn.deterministic = False
        cudnn.benchmark = True
    if not only_run_validation:
        trainer.run_training()
    if val_with_best:
        trainer.load_checkpoint(os.path.join(trainer.output_folder, "checkpoint_best.pth"))
    trainer.perform_actual_validation(export_validation_probabilities)


def train_with_class(
    trainer_class: type,
    dataset_name_or_id: Union[str, int],
    configuration: str,
    fold: Union[int, str],
    plans_identifier: str = "SegAnyPETPlans",
    device: torch.device = CUDA,
    continue_training: bool = False,
    only_run_validation: bool = False,
    export_validation_probabilities: bool = False,
    pretrained_weights: str | None = None,
    num_gpus: int = 1,
    val_with_best: bool = False,
    disable_checkpointing: bool = False,
):
    """Trains ``trainer_class`` like ``nnUNetv2_train`` into ``$nnUNet_results/DatasetXXX/<Trainer>__<Plans>__<cfg>/``.

    Args:
        trainer_class: an nnUNetTrainer subclass (class object, not a name).
        dataset_name_or_id: "901" / 901 / "Dataset901_Name".
        configuration: plans configuration, e.g. "3d_fullres".
        fold: 0..4 or "all".
        plans_identifier: plans file name without ".json".
        device: torch device (use ``make_device`` for nnU-Net's thread settings).
        continue_training / only_run_validation / export_validation_probabilities / pretrained_weights /
        val_with_best / disable_checkpointing: nnUNetv2_train's ``--c`` / ``--val`` / ``--npz`` /
        ``-pretrained_weights`` / ``--val_best`` / ``--disable_checkpointing``.
        num_gpus: > 1 spawns one DDP process per GPU (cuda only, one node).

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
    )
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
    _run(trainer, **run_kwargs)
    return trainer


def train_entry() -> None:
    """Console script ``seganypet_train`` (nnUNetv2_train's flags)."""
    import argparse

    from seganypet_nnunet.trainers.registry import TRAINERS, get_trainer_class

    p = argparse.ArgumentParser(description="Train a SegAnyPET / baseline trainer with nnU-Net's layout.")
    p.add_argument("dataset_name_or_id", type=str, help="Dataset name or ID to train with")
    p.add_argument("configuration", type=str, help="Configuration that should be trained")
    p.add_argument("fold", type=str, help="Fold of the 5-fold cross-validation (0-4) or 'all'")
    p.add_argument("-tr", default="SegAnyPETTrainer", help=f"[OPTIONAL] trainer class, one of: {', '.join(TRAINERS)}")
    p.add_argument("-p", default="SegAnyPETPlans", help="[OPTIONAL] plans identifier. Default: SegAnyPETPlans")
    p.add_argument("-pretrained_weights", default=None, help="[OPTIONAL] nnU-Net checkpoint to start from")
    p.add_argument("-num_gpus", type=int, default=1, help="[OPTIONAL] number of GPUs (DDP)")
    p.add_argument("--npz", action="store_true", help="[OPTIONAL] save validation probabilities (.npz)")
    p.add_argument("--c", action="store_true", help="[OPTIONAL] continue training from the latest checkpoint")
    p.add_argument("--val", action="store_true", help="[OPTIONAL] only run the final validation")
    p.add_argument("--val_best", action="store_true", help="[OPTIONAL] validate with checkpoint_best.pth")
    p.add_argument("--disable_checkpointing", action="store_true", help="[OPTIONAL] write no checkpoints")
    p.add_argument("-device", default="cuda", choices=DEVICES, help="[OPTIONAL] cuda (default), cpu or mps")
    a = p.parse_args()
    train_with_class(
        get_trainer_class(a.tr),
        a.dataset_name_or_id,
        a.configuration,
        a.fold,
        a.p,
        make_device(a.device),
        a.c,
        a.val,
        a.npz,
        a.pretrained_weights,
        a.num_gpus,
        a.val_best,
        a.disable_checkpointing,
    )


if __name__ == "__main__":
    train_entry()
