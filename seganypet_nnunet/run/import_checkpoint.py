"""``seganypet_import_checkpoint``: a released SAM-Med3D / SegAnyPET checkpoint -> an nnU-Net model folder.

``seganypet_import_checkpoint --checkpoint seganypet_v2.pth -o MODEL_FOLDER`` writes a self-contained zero-shot
model folder (``SamMed3DPlanner``'s fixed preprocessing, one PET channel; no dataset needed) that ``-m MODEL_FOLDER``
loads. ``-d 221`` instead writes the folder below for fine-tuning on a dataset. The file is read with
``load_checkpoint`` (``weights_only`` unpickler with an allowlist of harmless globals: no pickled code runs; upstream's
training checkpoints with optimizer state, numpy scalars and an ``argparse.Namespace`` load as they are),
accepts a raw state_dict or ``{"model_state_dict": ...}``
(optionally with DDP's ``module.`` prefix), loads it STRICTLY into ``SamMed3DNet`` and writes, atomically,

    $nnUNet_results/DatasetXXX_Name/<NAME>__<PLANS>__3d_fullres/
        plans.json, dataset.json, fold_all/checkpoint_final.pth

which ``SegAnyPETSession``, ``seganypet_predict --prompts`` and ``seganypet_evaluate`` run zero-shot (``-tr NAME -p
PLANS -f all``). The plans are ``$nnUNet_preprocessed/DatasetXXX/<PLANS>.json`` when present, else the dataset is
fingerprinted and planned with the planner preset (``SamMed3DPlanner``). A wrong or truncated file raises
``CheckpointError`` with one line naming the file (missing keys, unexpected keys, shape mismatches) before anything
is written. ``load_pretrained_weights`` is the same reader for ``seganypet_train -pretrained_weights``.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

import seganypet_nnunet
from seganypet_nnunet import io_utils
from seganypet_nnunet.checkpoint_io import CheckpointError, load_checkpoint
from seganypet_nnunet.errors import InputNotFoundError, SeganypetError, cli_entry, one_line

DEFAULT_NAME = "SamMed3DImported"
CONFIGURATION = "3d_fullres"
FOLD = "all"
SHOWN_KEYS = 5  # keys listed per category in an error line


def read_released_state_dict(
    path: str | Path, *, trusted: bool = False, checkpoint: object | None = None
) -> tuple[dict[str, torch.Tensor], str]:
    """The state_dict inside a released checkpoint file, ``module.`` prefixes stripped.

    Args:
        path: a raw state_dict, or a dict holding it under ``model_state_dict`` (SAM-Med3D's training checkpoints).
        trusted: allow the full unpickler (only for files from a trusted source; see ``load_checkpoint``).
        checkpoint: the object already read from ``path`` (the file is then not read again).

    Returns:
        (state_dict, layout): layout is ``"model_state_dict"`` or ``"state_dict"``.

    Raises:
        CheckpointError: one line naming the file: unreadable, or not a mapping of tensors.
    """
    obj = load_checkpoint(path, trusted=trusted) if checkpoint is None else checkpoint
    layout = "state_dict"
    if isinstance(obj, Mapping) and "model_state_dict" in obj:
        obj, layout = obj["model_state_dict"], "model_state_dict"
    if not isinstance(obj, Mapping) or not obj:
        raise CheckpointError(f"{path}: not a state_dict nor a {{'model_state_dict': ...}} checkpoint")
    bad = [k for k, v in obj.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if bad:
        raise CheckpointError(f"{path}: entries that are not tensors: {_shown(bad)}")
    return {k.removeprefix("module."): v for k, v in obj.items()}, layout


def state_dict_problems(expected: Mapping[str, torch.Tensor], given: Mapping[str, torch.Tensor]) -> str | None:
    """One line listing missing keys, unexpected keys and shape mismatches, or None when ``given`` fits exactly."""
    missing = [k for k in expected if k not in given]
    unexpected = [k for k in given if k not in expected]
    shapes = [
        f"{k} {tuple(given[k].shape)} != {tuple(v.shape)}"
        for k, v in expected.items()
        if k in given and tuple(given[k].shape) != tuple(v.shape)
    ]
    if not (missing or unexpected or shapes):
        return None
    parts = [
        f"{len(missing)} missing keys {_shown(missing)}",
        f"{len(unexpected)} unexpected keys {_shown(unexpected)}",
        f"{len(shapes)} shape mismatches (file != model) {_shown(shapes)}",
    ]
    return "; ".join(parts)


def load_strict(network: nn.Module, state_dict: Mapping[str, torch.Tensor], path: str | Path) -> None:
    """``network.load_state_dict(state_dict, strict=True)`` with the clear one-line ``CheckpointError`` first."""
    problems = state_dict_problems(network.state_dict(), state_dict)
    if problems:
        raise CheckpointError(f"{path}: does not match {type(network).__name__} ({len(state_dict)} keys): {problems}")
    network.load_state_dict(state_dict, strict=True)


def load_pretrained_weights(
    network: nn.Module, path: str | Path, *, trusted: bool = False, checkpoint: object | None = None
) -> str:
    """``-pretrained_weights``: an nnU-Net checkpoint (``network_weights``) or a released one, into ``network``.

    nnU-Net checkpoints follow nnU-Net's rule (``trainers.base.load_pretrained_weights``: every key except the
    segmentation layers must exist with the same shape); a released checkpoint (raw state_dict or
    ``model_state_dict``, optional ``module.`` prefix) is loaded strictly. DDP / torch.compile wrappers are unwrapped.
    ``checkpoint`` is the object already read from ``path`` (not read again). Returns the layout read
    (``network_weights`` / released layout).
    """
    from seganypet_nnunet.trainers.base import load_pretrained_weights as load_nnunet_weights

    obj = load_checkpoint(path, trusted=trusted) if checkpoint is None else checkpoint
    if isinstance(obj, Mapping) and "network_weights" in obj:
        load_nnunet_weights(network, str(path), trusted, obj)
        return "network_weights"
    mod = network.module if hasattr(network, "module") else network
    mod = getattr(mod, "_orig_mod", mod)
    state_dict, layout = read_released_state_dict(path, trusted=trusted, checkpoint=obj)
    load_strict(mod, state_dict, path)
    return layout


def nnunet_checkpoint(network: nn.Module, plans: dict, dataset_json: dict, extra: dict) -> dict:
    """nnU-Net's checkpoint layout (tensors and plain types only), ``trainer_name = "nnUNetTrainer"`` (DESIGN.md)."""
    return {
        "network_weights": {k: v.detach().cpu().clone() for k, v in network.state_dict().items()},
        "optimizer_state": None,
        "grad_scaler_state": None,
        "logging": {},
        "_best_ema": None,
        "current_epoch": 0,
        "trainer_name": "nnUNetTrainer",
        "init_args": {"plans": plans, "configuration": CONFIGURATION, "fold": FOLD, "dataset_json": dataset_json},
        "inference_allowed_mirroring_axes": None,
        "seganypet": {"version": seganypet_nnunet.__version__, **extra},
    }


def dataset_plans(dataset_id: int | str, planner: str) -> tuple[dict, dict, str]:
    """(plans, dataset.json, dataset name): existing plans of ``planner`` in nnUNet_preprocessed, else planned now.

    Raises:
        SeganypetError: unknown dataset, or the plans' 3d_fullres network is not SamMed3DNet.
    """
    from nnunetv2.paths import nnUNet_preprocessed, nnUNet_raw

    from seganypet_nnunet.model.sam_med3d.network import SamMed3DNet
    from seganypet_nnunet.planners import get_planner_pair
    from seganypet_nnunet.run.plan_and_preprocess import planning_thread_setting

    planner_class = get_planner_pair(planner)[0]
    name = dataset_name(dataset_id)
    plans_file = Path(nnUNet_preprocessed) / name / f"{planner_class.default_plans_name}.json"
    if not plans_file.is_file():
        from nnunetv2.experiment_planning.plan_and_preprocess_api import (
            extract_fingerprint_dataset,
            plan_experiment_dataset,
        )

        extract_fingerprint_dataset(int(name[7:10]), num_processes=1, check_dataset_integrity=False, verbose=False)
        with planning_thread_setting():  # nnUNet_n_proc_DA=0 (the CPU setting) would stop nnU-Net's planner
            plan_experiment_dataset(int(name[7:10]), planner_class)
    plans = json.loads(plans_file.read_text())
    ds_file = Path(nnUNet_preprocessed) / name / "dataset.json"
    if not ds_file.is_file():
        ds_file = Path(nnUNet_raw) / name / "dataset.json"
    arch = plans["configurations"].get(CONFIGURATION, {}).get("architecture", {})
    want = f"{SamMed3DNet.__module__}.{SamMed3DNet.__qualname__}"
    if arch.get("network_class_name") != want:
        raise SeganypetError(f"{plans_file}: 3d_fullres network is {arch.get('network_class_name')!r}, not {want}")
    return plans, json.loads(ds_file.read_text()), name


def dataset_name(dataset_id: int | str) -> str:
    """``DatasetXXX_Name`` for an id or name in nnUNet_raw / nnUNet_preprocessed; SeganypetError when unknown."""
    from nnunetv2.utilities.dataset_name_id_conversion import maybe_convert_to_dataset_name

    try:
        return maybe_convert_to_dataset_name(dataset_id)
    except (RuntimeError, ValueError) as err:
        msg = f"-d {dataset_id}: no such dataset in nnUNet_raw / nnUNet_preprocessed ({one_line(err)})"
        raise SeganypetError(msg) from None


def _checked_state_dict(checkpoint: Path, trusted: bool) -> tuple[dict[str, torch.Tensor], str]:
    """The released weights of ``checkpoint``, key/shape-checked against ``SamMed3DNet`` on the meta device."""
    from seganypet_nnunet.model.sam_med3d.network import SamMed3DNet

    state_dict, layout = read_released_state_dict(checkpoint, trusted=trusted)
    with torch.device("meta"):  # key/shape check before anything is planned or written
        problems = state_dict_problems(SamMed3DNet().state_dict(), state_dict)
    if problems:
        raise CheckpointError(f"{checkpoint}: not a SAM-Med3D vit_b_ori file ({len(state_dict)} keys): {problems}")
    return state_dict, layout


def _write_model_folder(
    folder: Path, plans: dict, dataset_json: dict, state_dict: dict, checkpoint: Path, extra: dict
) -> None:
    """Builds the network from ``plans``, loads ``state_dict`` strictly and writes the folder (temp name, rename)."""
    from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

    from seganypet_nnunet.inference.model_folder import build_network

    pm = PlansManager(plans)
    network = build_network(pm, pm.get_configuration(CONFIGURATION), dataset_json)
    load_strict(network, state_dict, checkpoint)
    with io_utils.atomic_folder(folder) as tmp:
        io_utils.write_json(plans, tmp / "plans.json")
        io_utils.write_json(dataset_json, tmp / "dataset.json")
        (tmp / f"fold_{FOLD}").mkdir()
        ckpt = nnunet_checkpoint(network, plans, dataset_json, extra)
        torch.save(ckpt, tmp / f"fold_{FOLD}" / "checkpoint_final.pth")


def import_checkpoint(
    checkpoint: str | Path,
    dataset_id: int | str | None = None,
    *,
    output_folder: str | Path | None = None,
    name: str = DEFAULT_NAME,
    planner: str = "SamMed3DPlanner",
    overwrite: bool = False,
    trusted: bool = False,
) -> Path:
    """Writes the model folder for a released checkpoint (module docstring) and returns its path.

    Args:
        checkpoint: the released file.
        dataset_id: write ``$nnUNet_results/DatasetXXX/<name>__<plans>__3d_fullres`` with the dataset's plans
            (fine-tuning on a dataset).
        output_folder: instead of ``dataset_id``: a self-contained zero-shot model folder at this path, with
            ``SamMed3DPlanner``'s fixed preprocessing (``standalone_plans``) and a one-channel PET dataset.json.

    Raises:
        SeganypetError: not exactly one of ``dataset_id`` / ``output_folder``, an unknown dataset, a model folder
            that exists without ``overwrite`` (``ModelFolderExistsError``, also a FileExistsError), or a path that
            is not a folder (all before anything is read or made).
        CheckpointError: unreadable or unsafe file, or keys / shapes that do not match ``SamMed3DNet`` (nothing is
            written).
    """
    from nnunetv2.utilities.file_path_utilities import get_output_folder

    from seganypet_nnunet.planners.sam_med3d_planner import standalone_dataset_json, standalone_plans

    if (dataset_id is None) == (output_folder is None):
        raise SeganypetError("give exactly one of -d DATASET (model folder in nnUNet_results) or -o MODEL_FOLDER")
    checkpoint = Path(checkpoint)
    if checkpoint.is_dir():
        raise SeganypetError(f"--checkpoint {checkpoint}: is a directory, not a checkpoint file")
    if not checkpoint.is_file():
        raise InputNotFoundError(f"--checkpoint {checkpoint}: file not found")
    if output_folder is not None:
        folder = Path(output_folder)
        _check_target(folder, overwrite, "-o")
        state_dict, layout = _checked_state_dict(checkpoint, trusted)
        plans, dataset_json = standalone_plans(), standalone_dataset_json()
    else:
        from seganypet_nnunet.planners import get_planner_pair
        from seganypet_nnunet.validation import check_path_name

        check_path_name(name, field="--name")  # it becomes a folder name under nnUNet_results
        plans_name = get_planner_pair(planner)[0].default_plans_name
        folder = Path(get_output_folder(dataset_name(dataset_id), name, plans_name, CONFIGURATION))
        _check_target(folder, overwrite, "model folder")
        state_dict, layout = _checked_state_dict(checkpoint, trusted)
        plans, dataset_json, _ = dataset_plans(dataset_id, planner)
    extra = {"imported_from": str(checkpoint.resolve()), "source_layout": layout, "trainer_class": name}
    _write_model_folder(folder, plans, dataset_json, state_dict, checkpoint, extra)
    return folder


class ModelFolderExistsError(SeganypetError, FileExistsError):
    """The model folder exists and ``overwrite`` is False (also a FileExistsError for API callers)."""


def _check_target(folder: Path, overwrite: bool, what: str) -> None:
    if folder.exists() and not folder.is_dir():
        raise SeganypetError(f"{what} {folder}: exists and is not a folder")
    if folder.exists() and not overwrite:
        raise ModelFolderExistsError(f"{what} {folder}: exists; pass --overwrite to replace it")


@cli_entry("seganypet_import_checkpoint")
def import_checkpoint_entry(argv: list[str] | None = None) -> None:
    """Console script ``seganypet_import_checkpoint``."""
    p = argparse.ArgumentParser(description="Turn a released SegAnyPET / SAM-Med3D checkpoint into an nnU-Net model.")
    p.add_argument("--checkpoint", required=True, help="[REQUIRED] released .pth (state_dict or model_state_dict)")
    p.add_argument("-d", help="[OPTIONAL] dataset name or id: model folder in nnUNet_results with its plans")
    p.add_argument("-o", help="[OPTIONAL] instead of -d: write a self-contained zero-shot model folder here")
    p.add_argument("--name", default=DEFAULT_NAME, help=f"[OPTIONAL] trainer part (-d). Default: {DEFAULT_NAME}")
    p.add_argument("-pl", default="SamMed3DPlanner", help="[OPTIONAL] planner preset (-d). Default: SamMed3DPlanner")
    p.add_argument("--overwrite", action="store_true", help="[OPTIONAL] replace an existing model folder")
    p.add_argument("--trust_checkpoint", action="store_true", help="[OPTIONAL] allow pickled code (trusted file only)")
    p.add_argument("--verbose", action="store_true", help="[OPTIONAL] tracebacks for errors")
    a = p.parse_args(argv)
    if a.pl not in _planner_names():
        raise SeganypetError(f"-pl {a.pl}: unknown planner preset; choose from {', '.join(_planner_names())}")
    folder = import_checkpoint(
        a.checkpoint,
        a.d,
        output_folder=a.o,
        name=a.name,
        planner=a.pl,
        overwrite=a.overwrite,
        trusted=a.trust_checkpoint,
    )
    if a.o is not None:
        print(f"model folder: {folder}\nuse it with: -m {folder} (seganypet_predict --prompts, seganypet_evaluate)")
        return
    plans = folder.name.split("__")[1]
    print(f"model folder: {folder}\nuse it with: -d {a.d} -tr {a.name} -p {plans} -c {CONFIGURATION} -f {FOLD}")


def _planner_names() -> list[str]:
    from seganypet_nnunet.planners import PLANNERS

    return [n for n in PLANNERS if n.startswith("SamMed3D")]


def _shown(items: list[str]) -> str:
    more = f", ... (+{len(items) - SHOWN_KEYS})" if len(items) > SHOWN_KEYS else ""
    return "[" + ", ".join(items[:SHOWN_KEYS]) + more + "]"


if __name__ == "__main__":
    import_checkpoint_entry()
