"""``seganypet_evaluate --protocol``: its flags and the dispatch to the challenge protocols (autopet_iv, autopet_v).

Above ``protocols.py`` (the plumbing both protocols share) so that the protocols import the plumbing and this module
imports the protocols, with no circle between them.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Sequence

from seganypet_nnunet.errors import SeganypetError
from seganypet_nnunet.evaluation.autopet_iv import run_autopet_iv
from seganypet_nnunet.evaluation.autopet_v import run_autopet_v
from seganypet_nnunet.pretrained import resolve_model

PROTOCOLS = ("clicks", "sam_med3d", "both", "autopet_iv", "autopet_v")


def add_protocol_arguments(parser: argparse.ArgumentParser) -> None:
    """``--protocol``, ``-clicks`` and ``-n_scribbles`` for ``seganypet_evaluate``."""
    parser.add_argument(
        "--protocol",
        default="clicks",
        choices=PROTOCOLS,
        help="[OPTIONAL] clicks (our simulated-click protocol, default: summary.json); sam_med3d (SAM-Med3D's oracle "
        "protocol: crop on the ground-truth box, random error-region clicks: summary_sam_med3d.json); both (clicks and "
        "sam_med3d); autopet_iv (step 0 automatic, then the "
        "click JSON's tumour/background pairs: OUT/predictions/CASE_pred0..10 + autopet_iv_score.json); autopet_v "
        "(automatic + simulated scribbles: autopet_v_score.json)",
    )
    parser.add_argument("-clicks", default=None, help="[OPTIONAL] autopet_iv: folder of CASE.json click files")
    help_scribbles = "[OPTIONAL] autopet_v: scribbles (seeded by -seed). Default: 5"
    parser.add_argument("-n_scribbles", type=int, default=5, help=help_scribbles)


def run_protocol(args: argparse.Namespace, folds: Sequence[int | str]) -> dict:
    """Runs ``args.protocol`` (autopet_iv / autopet_v) from parsed ``seganypet_evaluate`` arguments."""
    common = {
        "auto_pred": Path(args.auto_pred) if args.auto_pred else None,
        "folds": folds,
        "checkpoint": args.chk,
        "device": args.device,
    }
    if args.protocol == "autopet_iv":
        if args.clicks is None:
            raise SeganypetError("--protocol autopet_iv: needs -clicks FOLDER (CASE.json click files)")
        clicks = Path(args.clicks)
        model = resolve_model(args.m)
        return run_autopet_iv(model, Path(args.i), clicks, Path(args.o), ref_dir=Path(args.ref), **common)
    model = resolve_model(args.m)
    return run_autopet_v(
        model, Path(args.i), Path(args.ref), Path(args.o), n_scribbles=args.n_scribbles, seed=args.seed, **common
    )
