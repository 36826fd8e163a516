"""``seganypet_import_checkpoint``: a released SAM-Med3D / SegAnyPET checkpoint -> an nnU-Net model folder.

``seganypet_import_checkpoint --checkpoint seganypet_v2.pth -d 221`` reads the file with ``load_checkpoint``
(``torch.load(weights_only=True)``: no pickled code runs), accepts a raw state_dict or ``{"model_state_dict": ...}``
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
        ValueError: the plans' 3d_fullres network is not SamMed3DNet.
    """
    from nnunetv2.paths import nnUNet_preprocessed, nnUNet_raw
    from nnunetv2.utilities.dataset_name_id_conversion import maybe_convert_to_dataset_name

    from seganypet_nnunet.model.sam_med3d.network import SamMed3DNet
    from seganypet_nnunet.planners import get_planner_pair

    planner_class = get_planner_pair(planner)[0]
    name = maybe_convert_to_dataset_name(dataset_id)
    plans_file = Path(nnUNet_preprocessed) / name / f"{planner_class.default_plans_name}.json"
    if not plans_file.is_file():
        from nnunetv2.experiment_planning.plan_and_preprocess_api import (
            extract_fingerprint_dataset,
            plan_experiment_dataset,
        )

        extract_fingerprint_dataset(int(name[7:10]), num_processes=1, check_dataset_integrity=False, verbose=False)
        plan_experiment_dataset(int(name[7:10]), planner_class)
    plans = json.loads(plans_file.read_text())
    ds_file = Path(nnUNet_preprocessed) / name / "dataset.json"
    if not ds_file.is_file():
        ds_file = Path(nnUNet_raw) / name / "dataset.json"
    arch = plans["configurations"].get(CONFIGURATION, {}).get("architecture", {})
    want = f"{SamMed3DNet.__module__}.{SamMed3DNet.__qualname__}"
    if arch.get("network_class_name") != want:
        raise ValueError(f"{plans_file}: 3d_fullres network is {arch.get('network_class_name')!r}, not {want}")
    return plans, json.loads(ds_file.read_text()), name


def import_checkpoint(
    checkpoint: str | Path,
    dataset_id: int | str,
    *,
    name: str = DEFAULT_NAME,
    planner: str = "SamMed3DPlanner",
    overwrite: bool = False,
    trusted: bool = False,
) -> Path:
    """Writes the model folder for a released checkpoint (module docstring) and returns its path.

    Raises:
        CheckpointError: unreadable file, or keys / shapes that do not match ``SamMed3DNet`` (nothing is written).
        FileExistsError: the model folder exists and ``overwrite`` is False.
    """
    from nnunetv2.utilities.file_path_utilities import get_output_folder
    from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

    from seganypet_nnunet.inference.model_folder import build_network
    from seganypet_nnunet.model.sam_med3d.network import SamMed3DNet

    checkpoint = Path(checkpoint)
    state_dict, layout = read_released_state_dict(checkpoint, trusted=trusted)
    with torch.device("meta"):  # key/shape check before anything is planned or written
        problems = state_dict_problems(SamMed3DNet().state_dict(), state_dict)
    if problems:
        raise CheckpointError(f"{checkpoint}: not a SAM-Med3D vit_b_ori file ({len(state_dict)} keys): {problems}")
    plans, dataset_json, _ = dataset_plans(dataset_id, planner)
    pm = PlansManager(plans)
    network = build_network(pm, pm.get_configuration(CONFIGURATION), dataset_json)
    load_strict(network, state_dict, checkpoint)
    folder = Path(get_output_folder(dataset_id, name, pm.plans_name, CONFIGURATION))
    if folder.exists() and not overwrite:
        raise FileExistsError(f"model folder {folder} exists; pass --overwrite to replace it")
    extra = {"imported_from": str(checkpoint.resolve()), "source_layout": layout, "trainer_class": name}
    with io_utils.atomic_folder(folder) as tmp:
        io_utils.write_json(plans, tmp / "plans.json")
        io_utils.write_json(dataset_json, tmp / "dataset.json")
        (tmp / f"fold_{FOLD}").mkdir()
        ckpt = nnunet_checkpoint(network, plans, dataset_json, extra)
        torch.save(ckpt, tmp / f"fold_{FOLD}" / "checkpoint_final.pth")
    return folder


def import_checkpoint_entry() -> None:
    """Console script ``seganypet_import_checkpoint``."""
    p = argparse.ArgumentParser(description="Turn a released SegAnyPET / SAM-Med3D checkpoint into an nnU-Net model.")
    p.add_argument("--checkpoint", required=True, help="[REQUIRED] released .pth (state_dict or model_state_dict)")
    p.add_argument("-d", required=True, help="[REQUIRED] dataset name or id (its dataset.json and plans are used)")
    p.add_argument("--name", default=DEFAULT_NAME, help=f"[OPTIONAL] folder's trainer part. Default: {DEFAULT_NAME}")
    p.add_argument("-pl", default="SamMed3DPlanner", help="[OPTIONAL] planner preset. Default: SamMed3DPlanner")
    p.add_argument("--overwrite", action="store_true", help="[OPTIONAL] replace an existing model folder")
    p.add_argument("--trust_checkpoint", action="store_true", help="[OPTIONAL] allow pickled code (trusted file only)")
    a = p.parse_args()
    folder = import_checkpoint(
        a.checkpoint, a.d, name=a.name, planner=a.pl, overwrite=a.overwrite, trusted=a.trust_checkpoint
    )
    plans = folder.name.split("__")[1]
    print(f"model folder: {folder}\nuse it with: -d {a.d} -tr {a.name} -p {plans} -c {CONFIGURATION} -f {FOLD}")


def _shown(items: list[str]) -> str:
    more = f", ... (+{len(items) - SHOWN_KEYS})" if len(items) > SHOWN_KEYS else ""
    return "[" + ", ".join(items[:SHOWN_KEYS]) + more + "]"


if __name__ == "__main__":
    import_checkpoint_entry()
