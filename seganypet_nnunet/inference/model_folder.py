"""Loading an nnU-Net model folder without any lookup of the trainer by name, and building untrained ones.

Layout (nnU-Net's): ``MODEL/plans.json``, ``MODEL/dataset.json``, ``MODEL/fold_F/<checkpoint>`` holding
``network_weights``, ``trainer_name``, ``init_args['configuration']``, ``inference_allowed_mirroring_axes``. The
network is built from the plans with ``nnUNetTrainer.build_network_architecture`` (our network is fully described by
the plans, DESIGN.md), exactly what nnU-Net's predictor does after its lookup by name.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer
from nnunetv2.utilities.label_handling.label_handling import determine_num_input_channels
from nnunetv2.utilities.plans_handling.plans_handler import ConfigurationManager, PlansManager
from torch import nn

from seganypet_nnunet import io_utils
from seganypet_nnunet.checkpoint_io import CheckpointError, load_checkpoint
from seganypet_nnunet.errors import InputNotFoundError, SeganypetError
from seganypet_nnunet.pretrained import resolve_model
from seganypet_nnunet.trainers.base import tag_checkpoint


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0][:200] if lines else type(error).__name__


@dataclass
class LoadedModel:
    """A model folder in memory.

    Attributes:
        plans_manager / configuration_manager / dataset_json: nnU-Net objects for the checkpoint's configuration.
        parameters: one state dict per fold (CPU tensors).
        trainer_name: ``checkpoint['trainer_name']`` of the first fold (only recorded, never looked up).
        mirror_axes: ``inference_allowed_mirroring_axes`` of the first fold (network-input axes), or None.
        network: built from the plans (no deep supervision), fold 0 weights loaded, eval mode.
        configuration: configuration name.
    """

    plans_manager: PlansManager
    configuration_manager: ConfigurationManager
    dataset_json: dict
    parameters: list[dict]
    trainer_name: str
    mirror_axes: tuple[int, ...] | None
    network: nn.Module
    configuration: str

    def fold_networks(self, device: torch.device) -> list[nn.Module]:
        """One network per fold (eval mode, on ``device``); fold 0 reuses ``self.network``."""
        nets = []
        for i, params in enumerate(self.parameters):
            net = self.network if i == 0 else copy.deepcopy(self.network)
            net.load_state_dict(params)
            nets.append(net.to(device).eval())
        return nets


def build_network(
    plans_manager: PlansManager, configuration_manager: ConfigurationManager, dataset_json: dict
) -> nn.Module:
    """Network for a configuration, built from the plans exactly as nnU-Net does (deep supervision off)."""
    n_in = determine_num_input_channels(plans_manager, configuration_manager, dataset_json)
    n_out = plans_manager.get_label_manager(dataset_json).num_segmentation_heads
    return nnUNetTrainer.build_network_architecture(plans_manager, configuration_manager, n_in, n_out, False)


def _checkpoint_field(ckpt, key: str, path: Path):
    if not isinstance(ckpt, dict) or key not in ckpt:
        raise CheckpointError(f"{path}: not an nnU-Net checkpoint (no {key!r} entry)")
    return ckpt[key]


def _single_fold_all(folder: Path, folds: Sequence[int | str], checkpoint: str) -> Sequence[int | str]:
    """``("all",)`` when none of ``folds`` exists and ``fold_all`` is the folder's only fold (an imported released
    model, ``seganypet_import_checkpoint``), so the commands' default folds load it; else ``folds`` unchanged."""
    if any((folder / f"fold_{f}").is_dir() for f in folds):
        return folds
    present = [p.name for p in folder.glob("fold_*") if p.is_dir()]
    return ("all",) if present == ["fold_all"] and (folder / "fold_all" / checkpoint).is_file() else folds


def load_model_folder(
    folder: str | Path,
    folds: Sequence[int | str] = (0,),
    checkpoint: str = "checkpoint_final.pth",
    *,
    trusted: bool = False,
) -> LoadedModel:
    """Reads plans, dataset.json and the fold checkpoints of ``folder``.

    A folder whose only fold is ``fold_all`` (an imported released model) is loaded with that fold when none of
    ``folds`` exists. Checkpoints are read with ``checkpoint_io.load_checkpoint`` (weights_only); ``trusted=True``
    (the CLIs' ``--trust_checkpoint``) allows checkpoints holding other objects, for files from a trusted source.

    Raises:
        InputNotFoundError: (a FileNotFoundError) the folder, plans.json, dataset.json or a fold checkpoint is missing.
        CheckpointError: a checkpoint is unreadable, unsafe (code could run on load) or not an nnU-Net checkpoint.
        SeganypetError: ``folds`` is empty, a JSON file is unreadable, or the checkpoint does not fit the plans.
    """
    folder = resolve_model(folder)  # a path, or a packaged model's name
    if not folds:
        raise SeganypetError(f"{folder}: folds must name at least one fold")
    if not folder.is_dir():
        raise InputNotFoundError(f"{folder}: model folder not found")
    plans = io_utils.read_json_object(folder / "plans.json")
    dataset_json = io_utils.read_json_object(folder / "dataset.json")
    folds = _single_fold_all(folder, folds, checkpoint)
    paths = [folder / f"fold_{f}" / checkpoint for f in folds]
    for f, path in zip(folds, paths, strict=True):
        if not path.is_file():
            raise InputNotFoundError(f"{path}: fold {f} has no checkpoint {checkpoint} in model folder {folder}")
    plans_manager = PlansManager(plans)
    parameters, first = [], None
    for path in paths:
        ckpt = load_checkpoint(path, trusted=trusted)
        weights = _checkpoint_field(ckpt, "network_weights", path)
        first = first or (ckpt, path)
        parameters.append(weights)
    init_args = _checkpoint_field(first[0], "init_args", first[1])
    configuration = init_args.get("configuration") if isinstance(init_args, dict) else None
    if configuration not in plans_manager.available_configurations:
        raise CheckpointError(
            f"{first[1]}: configuration {configuration!r} is not in {folder / 'plans.json'} "
            f"({', '.join(plans_manager.available_configurations)})"
        )
    first = first[0]
    cm = plans_manager.get_configuration(configuration)
    network = build_network(plans_manager, cm, dataset_json)
    for path, params in zip(paths, parameters, strict=True):
        try:
            network.load_state_dict(params)
        except (RuntimeError, TypeError, AttributeError) as err:
            raise CheckpointError(
                f"{path}: network weights do not fit the network of {folder / 'plans.json'} ({_first_line(err)})"
            ) from None
    network.load_state_dict(parameters[0])
    network.eval()
    mirror = first.get("inference_allowed_mirroring_axes")
    return LoadedModel(
        plans_manager,
        cm,
        dataset_json,
        parameters,
        str(first["trainer_name"]),
        tuple(mirror) if mirror is not None else None,
        network,
        configuration,
    )


def write_untrained_model_folder(
    folder: str | Path,
    plans: dict,
    dataset_json: dict,
    configuration: str,
    folds: Sequence[int] = (0,),
    seed: int = 0,
    checkpoint: str = "checkpoint_final.pth",
) -> Path:
    """Writes an nnU-Net model folder holding an **untrained** network built from ``plans`` (tests, benchmarks).

    Each fold gets its own random initialisation (seed + fold). Checkpoints follow nnU-Net's format, tagged like our
    trainers' (``trainers.base.tag_checkpoint``: stock ``trainer_name``, trainer class ``"untrained"``), with mirroring
    axes (0, 1, 2).
    """
    folder = Path(folder)
    pm = PlansManager(plans)
    cm = pm.get_configuration(configuration)
    io_utils.write_json(plans, folder / "plans.json")
    io_utils.write_json(dataset_json, folder / "dataset.json")
    for f in folds:
        torch.manual_seed(seed + int(f))
        net = build_network(pm, cm, dataset_json)
        ckpt = {
            "network_weights": net.state_dict(),
            "optimizer_state": None,
            "grad_scaler_state": None,
            "logging": {},
            "_best_ema": None,
            "current_epoch": 0,
            "init_args": {
                "plans": plans,
                "configuration": configuration,
                "fold": int(f),
                "dataset_json": dataset_json,
                "device": torch.device("cpu"),
            },
            "inference_allowed_mirroring_axes": (0, 1, 2),
        }
        tag_checkpoint(ckpt, "untrained")
        with io_utils.atomic_path(folder / f"fold_{f}" / checkpoint) as tmp:
            torch.save(io_utils.plain(ckpt), tmp)  # plain types only: loads with weights_only=True
    return folder


def plan_and_write_untrained(
    dataset_id: int,
    planner_class: type,
    configuration: str,
    model_folder: str | Path,
    folds: Sequence[int] = (0,),
    seed: int = 0,
) -> Path:
    """Fingerprint + plan ``$nnUNet_raw/DatasetXXX`` with ``planner_class`` (a class object, no lookup by name) and
    write an untrained model folder for ``configuration`` (tests and benchmarks when no trained model is given)."""
    from nnunetv2.experiment_planning.plan_and_preprocess_api import (
        extract_fingerprint_dataset,
        plan_experiment_dataset,
    )
    from nnunetv2.paths import nnUNet_raw
    from nnunetv2.utilities.dataset_name_id_conversion import maybe_convert_to_dataset_name

    extract_fingerprint_dataset(
        dataset_id, num_processes=1, check_dataset_integrity=False, clean=True, verbose=False, show_progress_bar=False
    )
    from seganypet_nnunet.run.plan_and_preprocess import planning_thread_setting

    with planning_thread_setting():
        plans, _ = plan_experiment_dataset(dataset_id, planner_class)
    name = maybe_convert_to_dataset_name(dataset_id)
    dataset_json = json.loads((Path(nnUNet_raw) / name / "dataset.json").read_text())
    return write_untrained_model_folder(model_folder, plans, dataset_json, configuration, folds, seed)
