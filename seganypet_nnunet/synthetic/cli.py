"""``seganypet_make_synthetic``: write a synthetic PET dataset in nnU-Net raw layout."""

from __future__ import annotations

import argparse
from pathlib import Path

from seganypet_nnunet.errors import SeganypetError, cli_entry
from seganypet_nnunet.paths import check_dataset_name, dataset_folder_name
from seganypet_nnunet.synthetic.config import AUTOPET_SPACING, PRESETS, SyntheticConfig
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
    parser.add_argument(
        "-preset",
        choices=sorted(PRESETS),
        default=None,
        help="[OPTIONAL] named generator preset: small, whole_body, or adult (adult whole body with the oncologic "
        "lesion population: 5-80 mm, necrotic/heterogeneous cores, organ-touching sites, touching node clusters; "
        "docs/synthetic.md). Default: whole_body (small with --small)",
    )
    parser.add_argument(
        "--tracer", choices=("fdg", "psma"), default=None, help="[OPTIONAL] uptake profile. Default: fdg (--psma: psma)"
    )
    parser.add_argument(
        "--spacing",
        type=float,
        nargs=3,
        default=None,
        metavar=("X", "Y", "Z"),
        help="[OPTIONAL] voxel spacing in mm, world order (x, y, z), e.g. 2.0364 2.0364 3 (autoPET) or 4 4 4. "
        "Default: the preset's",
    )
    parser.add_argument("--ct", action="store_true", help="[OPTIONAL] also write a CT-like channel (_0001, 'CT')")
    parser.add_argument("--oblique", action="store_true", help="[OPTIONAL] write a rotated (oblique) image grid")
    parser.add_argument(
        "-max_lesions", type=int, default=None, help="[OPTIONAL] max lesions per case. Default: 4 (adult preset: 8)"
    )
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
                             ("-max_lesions", args.max_lesions if args.max_lesions is not None else 0, 0)):  # fmt: skip
        if value < low:
            raise SeganypetError(f"{flag} {value}: must be >= {low}")
    if not 0 <= args.corrupt_fraction <= 1:
        raise SeganypetError(f"-corrupt_fraction {args.corrupt_fraction}: must be in [0, 1]")
    unknown = [k for k in args.corrupt_kinds if k not in KINDS]
    if unknown:
        raise SeganypetError(f"-corrupt_kinds {unknown[0]}: unknown, expected some of {', '.join(KINDS)}")
    if args.preset is not None and args.small and args.preset != "small":
        raise SeganypetError(f"-preset {args.preset}: conflicts with --small (use one of them)")
    if args.tracer is not None and args.psma and args.tracer != "psma":
        raise SeganypetError(f"--tracer {args.tracer}: conflicts with --psma")
    if args.spacing is not None:
        if args.autopet_spacing:
            raise SeganypetError("--spacing: conflicts with --autopet_spacing (use one of them)")
        if min(args.spacing) <= 0:
            values = " ".join(str(s) for s in args.spacing)
            raise SeganypetError(f"--spacing {values}: must be three positive mm values")
    if args.o is not None and Path(args.o).exists() and not Path(args.o).is_dir():
        raise SeganypetError(f"{args.o}: -o is an existing file, expected a folder")


def config_kwargs(args: argparse.Namespace) -> dict:
    """``SyntheticConfig`` keywords of the flags: the preset first, then the explicit flags on top of it."""
    preset = args.preset or ("small" if args.small else "whole_body")
    kwargs = dict(PRESETS[preset])
    if args.spacing is not None:
        kwargs["spacing"] = tuple(float(s) for s in args.spacing)
    elif args.autopet_spacing:
        kwargs["spacing"] = AUTOPET_SPACING
    kwargs["tracer"] = args.tracer or ("psma" if args.psma else "fdg")
    kwargs.update(with_ct=args.ct, oblique=args.oblique)
    if args.max_lesions is not None:
        kwargs["max_lesions"] = args.max_lesions
    return kwargs


@cli_entry("seganypet_make_synthetic")
def make_synthetic_entry(argv: list[str] | None = None) -> None:
    """Console entry point; prints the dataset folder."""
    args = build_parser().parse_args(argv)
    check_args(args)
    if args.o is None:
        from seganypet_nnunet.paths import nnunet_folder

        nnunet_folder("nnUNet_raw")
    config = SyntheticConfig(**config_kwargs(args))
    corruption = None
    if args.corrupt_fraction > 0:
        corruption = LabelCorruption(args.corrupt_fraction, tuple(args.corrupt_kinds), args.seed)
    folder = make_dataset(
        args.d, args.n, args.num_train, args.num_test, config, args.seed, args.o, corruption=corruption
    )
    print(folder)


if __name__ == "__main__":
    make_synthetic_entry()
