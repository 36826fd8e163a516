"""A trainer built from a CLASS, and its run: nnU-Net's ``get_trainer_from_args`` and ``run_training``.

Shared by ``train.py`` (``seganypet_train``, one process) and ``distributed.py`` (one rank of a torchrun / ``-num_gpus``
job), so neither imports the other. Checkpoints (``--c``, ``--val``, ``--val_best``, ``-pretrained_weights``) are read
only through ``checkpoint_io.load_checkpoint`` (weights_only; ``--trust_checkpoint`` opts in for trusted files).
"""

from __future__ import annotations

import contextlib
import os
from typing import Union

import torch

from seganypet_nnunet.cli_args import CUDA
from seganypet_nnunet.errors import InputNotFoundError, SeganypetError


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


def read_checkpoint(trainer, path: str, trusted: bool) -> None:
    """Restore ``path`` into ``trainer`` (any nnUNetTrainer) through the weights_only reader."""
    from seganypet_nnunet.checkpoint_io import load_checkpoint
    from seganypet_nnunet.trainers.base import restore_checkpoint

    restore_checkpoint(trainer, load_checkpoint(path, trusted=trusted, map_location=trainer.device), path)


def checkpoint_to_continue(folder: str) -> str | None:
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
        paths.append(checkpoint_to_continue(folder))
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
        chosen = checkpoint_to_continue(folder)
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
        read_checkpoint(trainer, chosen, trusted)


def run_trainer(
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
        read_checkpoint(trainer, os.path.join(trainer.output_folder, "checkpoint_best.pth"), trust_checkpoint)
    trainer.perform_actual_validation(export_validation_probabilities)
