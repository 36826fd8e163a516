"""``seganypet_make_synthetic``: write a synthetic PET dataset in nnU-Net raw layout."""

from __future__ import annotations

import argparse
from pathlib import Path

from seganypet_nnunet.errors import SeganypetError, cli_entry
from seganypet_nnunet.paths import check_dataset_name, dataset_folder_name
from seganypet_nnunet.synthetic.config import AUTOPET_SPACING, SyntheticConfig
from seganypet_nnunet.synthetic.corruption import KINDS, LabelCorruption
from seganypet_nnunet.synthetic.dataset import make_dataset


def build_parser() -> argparse.ArgumentParser:
    """Argument parser in nnU-Net's CLI grammar."""
    parser = argparse.ArgumentParser(description="Generate a synthetic whole-body PET dataset (nnU-Net raw layout).")
    parser.add_argument("-d", type=int, required=True, help="[REQUIRED] dataset id (1..999)")
    parser.add_argument("-n", type=str, default="SyntheticPET", help="[OPTIONAL] dataset name. Default: SyntheticPET")
    parser.add_argument("-num_train", type=int, default=6, help="[OPTIONAL] number of training cases. Default: 6")
    parser.add_argument("-num_test", type=int, default=2, help="[OPTIONAL] number of test cases. Default: 2")
    parser.add_argument(
        "--small",
        action="store_true",
        help="[OPTIONAL] small child-sized cases (64^3 voxels) instead of adult whole-body (4 mm)",
    )
    parser.add_argument(
        "--autopet_spacing",
        action="store_true",
        help=f"[OPTIONAL] use autoPET's voxel spacing {AUTOPET_SPACING} mm instead of the preset",
    )
    parser.add_argument("--psma", action="store_true", help="[OPTIONAL] PSMA uptake profile instead of FDG")
    parser.add_argument("--ct", action="store_true", help="[OPTIONAL] also write a CT-like channel (_0001, 'CT')")
    parser.add_argument("--oblique", action="store_true", help="[OPTIONAL] write a rotated (oblique) image grid")
    parser.add_argument("-max_lesions", type=int, default=4, help="[OPTIONAL] max lesions per case. Default: 4")
    parser.add_argument(
        "-corrupt_fraction",
        type=float,
        default=0.0,
        help="[OPTIONAL] fraction of TRAINING cases given low-quality labels (dilation/erosion, shift, missing part, "
        "boundary offset); writes low_quality_cases.json. Test labels stay clean. Default: 0 (none)",
    )
    parser.add_argument(
        "-corrupt_kinds",
        nargs="+",
        default=list(KINDS),
        help=f"[OPTIONAL] corruptions to draw from per case. Default: {' '.join(KINDS)}",
    )
    parser.add_argument("-seed", type=int, default=0, help="[OPTIONAL] base seed. Default: 0")
    parser.add_argument(
        "-o", type=str, default=None, help="[OPTIONAL] raw root folder to write into instead of $nnUNet_raw"
    )
    return parser


def check_args(args: argparse.Namespace) -> None:
    """Every flag checked before any work (one-line SeganypetError naming the flag)."""
    check_dataset_name(args.n)
    dataset_folder_name(args.d, args.n)
    for flag, value, low in (("-num_train", args.num_train, 1), ("-num_test", args.num_test, 0),
                             ("-max_lesions", args.max_lesions, 0)):  # fmt: skip
        if value < low:
            raise SeganypetError(f"{flag} {value}: must be >= {low}")
    if not 0 <= args.corrupt_fraction <= 1:
        raise SeganypetError(f"-corrupt_fraction {args.corrupt_fraction}: must be in [0, 1]")
    unknown = [k for k in args.corrupt_kinds if k not in KINDS]
    if unknown:
        raise SeganypetError(f"-corrupt_kinds {unknown[0]}: unknown, expected some of {', '.join(KINDS)}")
    if args.o is not None and Path(args.o).exists() and not Path(args.o).is_dir():
        raise SeganypetError(f"{args.o}: -o is an existing file, expected a folder")


@cli_entry("seganypet_make_synthetic")
def make_synthetic_entry(argv: list[str] | None = None) -> None:
    """Console entry point; prints the dataset folder."""
    args = build_parser().parse_args(argv)
    check_args(args)
    if args.o is None:
        from seganypet_nnunet.paths import nnunet_folder

        nnunet_folder("nnUNet_raw")
    config = SyntheticConfig(
        size="small" if args.small else "whole_body",
        spacing=AUTOPET_SPACING if args.autopet_spacing else None,
        tracer="psma" if args.psma else "fdg",
        with_ct=args.ct,
        oblique=args.oblique,
        max_lesions=args.max_lesions,
    )
    corruption = None
    if args.corrupt_fraction > 0:
        corruption = LabelCorruption(args.corrupt_fraction, tuple(args.corrupt_kinds), args.seed)
    folder = make_dataset(
        args.d, args.n, args.num_train, args.num_test, config, args.seed, args.o, corruption=corruption
    )
    print(folder)


if __name__ == "__main__":
    make_synthetic_entry()
