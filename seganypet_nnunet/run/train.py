"""``seganypet_train``: nnUNetv2_train's grammar and results layout, with trainer CLASSES from our registry.

nnU-Net's own launcher resolves ``-tr`` by name inside nnunetv2, which breaks on machines whose torchvision cannot be
imported (a CUDA build of torchvision on a CPU torch). This one passes class objects and otherwise reuses nnU-Net's
functions (``find_free_network_port``, DDP setup). Checkpoints (``--c``, ``--val``, ``--val_best``,
``-pretrained_weights``) are read only through ``checkpoint_io.load_checkpoint`` (weights_only; ``--trust_checkpoint``
opts in for trusted files), never through nnU-Net's ``torch.load(weights_only=False)``.
"""

from __future__ import annotations

import contextlib
import os
from typing import Union

import torch

from seganypet_nnunet.cli_args import CUDA, DEFAULT_PLANS
from seganypet_nnunet.errors import InputNotFoundError, SeganypetError, cli_entry


def resolve_training(
    dataset_name_or_id: Union[str, int], configuration: str, fold: Union[int, str], plans_identifier: str
) -> tuple[str, dict, Union[int, str]]:
    """(preprocessed dataset folder, plans, fold) after checking them, before anything is built or written.

    Raises:
        SeganypetError: unset folders, unknown dataset, missing plans, configuration not planned, fold not in splits.
    """
    from batchgenerators.utilities.file_and_folder_operations import join, load_json

    from seganypet_nnunet.paths import nnunet_folder
    from seganypet_nnunet.splits import check_fold

    for variable in ("nnUNet_preprocessed", "nnUNet_results"):
        nnunet_folder(variable)  # one-line error when unset
    from nnunetv2.paths import nnUNet_preprocessed
    from nnunetv2.utilities.dataset_name_id_conversion import maybe_convert_to_dataset_name

    try:
        name = maybe_convert_to_dataset_name(str(dataset_name_or_id))
    except (RuntimeError, ValueError) as err:
        raise SeganypetError(f"dataset {dataset_name_or_id!r}: {str(err).splitlines()[0][:200]}") from None
    folder = join(nnUNet_preprocessed, name)
    plans_file = join(folder, plans_identifier + ".json")
    if not os.path.isfile(plans_file):
        raise InputNotFoundError(f"{plans_file}: plans file not found: run seganypet_plan_and_preprocess first")
    plans = load_json(plans_file)
    if configuration not in plans.get("configurations", {}):
        raise SeganypetError(
            f"{plans_file}: configuration {configuration!r} not planned ({', '.join(plans.get('configurations', {}))})"
        )
    return folder, plans, check_fold(folder, fold)


def check_preprocessed_data(folder: str, plans: dict, configuration: str, fold: Union[int, str]) -> list[str]:
    """The configuration's preprocessed data is complete (``run.preprocessed``) and holds every case of the splits
    (or ``numTraining`` of the preprocessed dataset.json); without a splits file nnU-Net's 5-fold split needs >= 5
    cases. Returns the case identifiers.

    Raises:
        SeganypetError: one line naming the folder: half-written by a killed or failed preprocessing run, cases
            missing, or too few cases for nnU-Net's own 5 folds.
    """
    import json
    from pathlib import Path

    from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

    from seganypet_nnunet.run.preprocessed import check_complete
    from seganypet_nnunet.splits import SPLITS_FILE

    data = Path(folder) / PlansManager(plans).get_configuration(configuration).data_identifier
    splits_file = Path(folder) / SPLITS_FILE
    expected = None
    if splits_file.is_file():
        with contextlib.suppress(OSError, ValueError, TypeError, KeyError):
            expected = sorted({c for s in json.loads(splits_file.read_text()) for c in (*s["train"], *s["val"])})
    cases = check_complete(data, expected)
    if expected is None:
        with contextlib.suppress(OSError, ValueError, TypeError):
            n = json.loads((Path(folder) / "dataset.json").read_text()).get("numTraining")
            if isinstance(n, int) and len(cases) < n:
                raise SeganypetError(
                    f"{data}: holds {len(cases)} of the dataset's {n} training cases (preprocessing did not finish); "
                    "run seganypet_plan_and_preprocess again"
                )
        if fold != "all" and len(cases) < 5:
            raise SeganypetError(
                f"{data}: {len(cases)} training case(s) are too few for nnU-Net's 5-fold split; add cases, "
                f"write {splits_file.name} (seganypet_plan_and_preprocess does for patient-grouped data) or use -f all"
            )
    return cases


def build_trainer(
    trainer_class: type,
    dataset_name_or_id: Union[str, int],
    configuration: str,
    fold: Union[int, str],
    plans_identifier: str,
    continue_training: bool = False,
    device: torch.device = CUDA,
):
    """nnU-Net's ``get_trainer_from_args`` for a class object: loads plans + dataset.json from nnUNet_preprocessed.

    Raises:
        SeganypetError: unknown dataset, missing plans, configuration not in the plans, fold not in the splits.
    """
    from batchgenerators.utilities.file_and_folder_operations import join, load_json

    folder, plans, fold = resolve_training(dataset_name_or_id, configuration, fold, plans_identifier)
    plans["continue_training"] = continue_training
    return trainer_class(
        plans=plans,
        configuration=configuration,
        fold=fold,
        dataset_json=load_json(join(folder, "dataset.json")),
        device=device,
    )


def check_run_flags(
    continue_training: bool,
    only_run_validation: bool,
    pretrained_weights: str | None,
    val_with_best: bool,
    disable_checkpointing: bool,
) -> None:
    """Flag combinations nnU-Net rejects, and a missing ``-pretrained_weights`` file, before any work."""
    if continue_training and only_run_validation:
        raise SeganypetError("--c and --val cannot be used together")
    if val_with_best and disable_checkpointing:
        raise SeganypetError("--val_best is not compatible with --disable_checkpointing")
    if continue_training and pretrained_weights is not None:
        raise SeganypetError("-pretrained_weights: cannot be combined with --c (pretrained weights start a training)")
    if pretrained_weights is not None and not os.path.isfile(pretrained_weights):
        raise InputNotFoundError(f"{pretrained_weights}: -pretrained_weights file not found")


def _read_checkpoint(trainer, path: str, trusted: bool) -> None:
    """Restore ``path`` into ``trainer`` (any nnUNetTrainer) through the weights_only reader."""
    from seganypet_nnunet.checkpoint_io import load_checkpoint
    from seganypet_nnunet.trainers.base import restore_checkpoint

    restore_checkpoint(trainer, load_checkpoint(path, trusted=trusted, map_location=trainer.device), path)


def _checkpoint_to_continue(folder: str) -> str | None:
    names = ("checkpoint_final.pth", "checkpoint_latest.pth", "checkpoint_best.pth")
    return next((os.path.join(folder, n) for n in names if os.path.isfile(os.path.join(folder, n))), None)


def preflight_checkpoints(
    trainer_class: type,
    dataset_name_or_id: Union[str, int],
    configuration: str,
    fold: Union[int, str],
    plans_identifier: str,
    *,
    continue_training: bool,
    only_run_validation: bool,
    pretrained_weights: str | None,
    val_with_best: bool,
    trust_checkpoint: bool,
    **_,
) -> None:
    """Reads every checkpoint the run will load (``checkpoint_io``, weights_only unless trusted) before any work."""
    from nnunetv2.utilities.file_path_utilities import get_output_folder

    from seganypet_nnunet.checkpoint_io import load_checkpoint

    folder = get_output_folder(str(dataset_name_or_id), trainer_class.__name__, plans_identifier, configuration, fold)
    paths = [pretrained_weights] if pretrained_weights is not None else []
    if continue_training:
        paths.append(_checkpoint_to_continue(folder))
    if only_run_validation:
        final = os.path.join(folder, "checkpoint_final.pth")
        if not os.path.isfile(final):
            raise InputNotFoundError(f"{final}: --val needs a finished training (no checkpoint_final.pth)")
        paths.append(final)
    if val_with_best and only_run_validation:
        paths.append(os.path.join(folder, "checkpoint_best.pth"))
    for path in paths:
        if path is not None:
            load_checkpoint(path, trusted=trust_checkpoint)


def maybe_load_checkpoint(
    trainer, continue_training: bool, only_run_validation: bool, pretrained_weights: str | None, trusted: bool
) -> None:
    """nnU-Net's ``maybe_load_checkpoint`` (same file choice: final, latest, best) with our checkpoint reader."""
    from seganypet_nnunet.run.import_checkpoint import load_pretrained_weights  # nnU-Net or released layout

    folder = trainer.output_folder
    chosen = None
    if continue_training:
        chosen = _checkpoint_to_continue(folder)
        if chosen is None:
            print("WARNING: Cannot continue training because there seems to be no checkpoint available to continue "
                  "from. Starting a new training...")  # fmt: skip
    elif only_run_validation:
        chosen = os.path.join(folder, "checkpoint_final.pth")
        if not os.path.isfile(chosen):
            raise InputNotFoundError(f"{chosen}: --val needs a finished training (no checkpoint_final.pth)")
    elif pretrained_weights is not None:
        from seganypet_nnunet.checkpoint_io import load_checkpoint

        checkpoint = load_checkpoint(pretrained_weights, trusted=trusted)  # refused before any work if unsafe
        if not trainer.was_initialized:
            trainer.initialize()
        load_pretrained_weights(trainer.network, pretrained_weights, trusted=trusted, checkpoint=checkpoint)
    if chosen is not None:
        _read_checkpoint(trainer, chosen, trusted)


def _run(
    trainer,
    continue_training: bool,
    only_run_validation: bool,
    pretrained_weights: str | None,
    export_validation_probabilities: bool,
    val_with_best: bool,
    disable_checkpointing: bool,
    trust_checkpoint: bool = False,
) -> None:
    """The part of nnU-Net's run_training / run_ddp after the trainer exists."""
    from torch.backends import cudnn

    check_run_flags(continue_training, only_run_validation, pretrained_weights, val_with_best, disable_checkpointing)
    trainer.disable_checkpointing = disable_checkpointing
    trainer.trust_checkpoint = trust_checkpoint
    maybe_load_checkpoint(trainer, continue_training, only_run_validation, pretrained_weights, trust_checkpoint)
    if torch.cuda.is_available():
        cudnn.deterministic = False
        cudnn.benchmark = True
    if not only_run_validation:
        trainer.run_training()
    if val_with_best:
        _read_checkpoint(trainer, os.path.join(trainer.output_folder, "checkpoint_best.pth"), trust_checkpoint)
    trainer.perform_actual_validation(export_validation_probabilities)


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
    _run(trainer, **run_kwargs)
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
