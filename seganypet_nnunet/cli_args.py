"""What our console scripts share, with nnU-Net's flag grammar and defaults: model selection and the device.

``-device`` behaves as in nnU-Net's commands (default ``cuda``; nnU-Net's thread settings per device); on a machine
without the requested device every command stops with one line that suggests ``-device cpu``.
"""

from __future__ import annotations

import argparse
import multiprocessing
from pathlib import Path

import torch

from seganypet_nnunet.defaults import DEFAULT_PLANS, DEFAULT_TRAINER
from seganypet_nnunet.errors import SeganypetError, as_user_error
from seganypet_nnunet.validation import check_device

DEVICES = ("cuda", "cpu", "mps")
CUDA = torch.device("cuda")  # nnU-Net's default device


def add_model_arguments(parser: argparse.ArgumentParser, *, dataset_required: bool, default_folds: list[str]) -> None:
    """Adds nnUNetv2_predict's model-selection flags: ``-d -c -p -tr -f -chk``."""
    req = "[REQUIRED]" if dataset_required else "[OPTIONAL]"
    parser.add_argument("-d", required=dataset_required, default=None, help=f"{req} dataset name or id")
    parser.add_argument("-c", default="3d_fullres", help="[OPTIONAL] configuration. Default: 3d_fullres")
    add_plans_argument(parser)
    parser.add_argument("-tr", default=DEFAULT_TRAINER, help=f"[OPTIONAL] trainer name. Default: {DEFAULT_TRAINER}")
    parser.add_argument(
        "-f",
        nargs="+",
        default=default_folds,
        help=f"[OPTIONAL] folds to use (ensembled). Default: {' '.join(default_folds)}",
    )
    parser.add_argument(
        "-chk", default="checkpoint_final.pth", help="[OPTIONAL] checkpoint name. Default: checkpoint_final.pth"
    )


def add_plans_argument(parser: argparse.ArgumentParser) -> None:
    """``-p``: plans identifier; the size presets need theirs (e.g. ``SegAnyPETPlansTiny``, ``nnUNetPlansTiny``)."""
    parser.add_argument(
        "-p",
        default=DEFAULT_PLANS,
        help=f"[OPTIONAL] plans identifier. Default: {DEFAULT_PLANS}. Size presets write their own "
        "(SegAnyPETPlansSmall / SegAnyPETPlansTiny, baselines nnUNetPlansSmall / nnUNetPlansTiny): pass it here.",
    )


def add_device_argument(parser: argparse.ArgumentParser) -> None:
    """``-device`` with nnU-Net's default (cuda)."""
    parser.add_argument(
        "-device", default="cuda", choices=DEVICES, help="[OPTIONAL] cuda (default, as nnU-Net), cpu or mps"
    )


def add_trust_checkpoint_argument(parser: argparse.ArgumentParser, which: str = "") -> None:
    """``--trust_checkpoint`` (full unpickler for checkpoints); ``which`` names the checkpoint flags, if any."""
    parser.add_argument(
        "--trust_checkpoint",
        action="store_true",
        help=f"[OPTIONAL] also load checkpoints{which} holding objects other than tensors and plain types; unpickling "
        "such a file can run code: only for files from a source you trust",
    )


def add_model_folder_argument(parser: argparse.ArgumentParser) -> None:
    """``-m``: a model folder instead of ``-d -c -p -tr``."""
    parser.add_argument(
        "-m",
        default=None,
        help="[OPTIONAL] model folder, or a packaged model's name (seganypet_reference); overrides -d/-c/-p/-tr",
    )


def require_model_choice(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Usage error unless ``-m`` or ``-d`` was given."""
    if args.m is None and args.d is None:
        parser.error("give -m MODEL_FOLDER or -d DATASET (with -c/-p/-tr)")


def resolve_model_folder(args: argparse.Namespace) -> Path:
    """``-m`` if given, else ``model_folder(args)`` under ``$nnUNet_results`` (one line if unset or ``-d`` unknown)."""
    if getattr(args, "m", None) is not None:
        from seganypet_nnunet.pretrained import resolve_model

        return resolve_model(args.m)
    from seganypet_nnunet.paths import nnunet_folder

    nnunet_folder("nnUNet_results")
    with as_user_error(f"-d {args.d}", RuntimeError, ValueError):
        return model_folder(args)


def make_device(name: str) -> torch.device:
    """``-device`` string -> torch.device, with nnU-Net's thread settings (all cores on CPU, 1 thread on cuda).

    Raises:
        SeganypetError: unknown name, or the device is not available here (one line suggesting ``-device cpu``).
    """
    if name not in DEVICES:
        raise SeganypetError(f"-device must be one of {', '.join(DEVICES)}, got {name!r}")
    check_device(name)
    if name == "cpu":
        torch.set_num_threads(multiprocessing.cpu_count())
    elif name == "cuda":
        torch.set_num_threads(1)
        torch.set_num_interop_threads(1)
    return torch.device(name)


def device_from_args(args: argparse.Namespace) -> torch.device:
    """``make_device(args.device)`` for a console script (inside ``errors.cli_entry``: one line if unavailable)."""
    return make_device(args.device)


def parse_folds(folds: list[str]) -> list[int | str]:
    """nnU-Net fold arguments: integers, or ``all``."""
    return [f if f == "all" else int(f) for f in folds]


def model_folder(args: argparse.Namespace) -> Path:
    """``$nnUNet_results/DatasetXXX/<tr>__<p>__<c>`` from ``-d -tr -p -c`` (nnU-Net's own naming)."""
    from nnunetv2.utilities.file_path_utilities import get_output_folder

    return Path(get_output_folder(args.d, args.tr, args.p, args.c))
