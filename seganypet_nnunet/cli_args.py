"""Argument groups shared by our console scripts, with nnU-Net's flag grammar and defaults."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_model_arguments(parser: argparse.ArgumentParser, *, dataset_required: bool, default_folds: list[str]) -> None:
    """Adds nnUNetv2_predict's model-selection flags: ``-d -c -p -tr -f -chk``."""
    req = "[REQUIRED]" if dataset_required else "[OPTIONAL]"
    parser.add_argument("-d", required=dataset_required, default=None, help=f"{req} dataset name or id")
    parser.add_argument("-c", default="3d_fullres", help="[OPTIONAL] configuration. Default: 3d_fullres")
    parser.add_argument("-p", default="SegAnyPETPlans", help="[OPTIONAL] plans identifier. Default: SegAnyPETPlans")
    parser.add_argument("-tr", default="SegAnyPETTrainer", help="[OPTIONAL] trainer name. Default: SegAnyPETTrainer")
    parser.add_argument(
        "-f",
        nargs="+",
        default=default_folds,
        help=f"[OPTIONAL] folds to use (ensembled). Default: {' '.join(default_folds)}",
    )
    parser.add_argument(
        "-chk", default="checkpoint_final.pth", help="[OPTIONAL] checkpoint name. Default: checkpoint_final.pth"
    )


def parse_folds(folds: list[str]) -> list[int | str]:
    """nnU-Net fold arguments: integers, or ``all``."""
    return [f if f == "all" else int(f) for f in folds]


def model_folder(args: argparse.Namespace) -> Path:
    """``$nnUNet_results/DatasetXXX/<tr>__<p>__<c>`` from ``-d -tr -p -c`` (nnU-Net's own naming)."""
    from nnunetv2.utilities.file_path_utilities import get_output_folder

    return Path(get_output_folder(args.d, args.tr, args.p, args.c))
