"""``seganypet_evaluate``: the command line over ``interactive.evaluate_model_folder`` (simulated clicks, the PET
reader's methods, automatic and baseline predictions) and the other protocols (``protocols.py``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from seganypet_nnunet import io_utils, validation
from seganypet_nnunet.errors import as_user_error, cli_entry
from seganypet_nnunet.evaluation import summary as S
from seganypet_nnunet.evaluation.interactive import DEFAULT_LESION_NAMES, evaluate_model_folder


@cli_entry("seganypet_evaluate")
def evaluate_entry(argv: list[str] | None = None) -> None:
    """Console script ``seganypet_evaluate``."""
    from seganypet_nnunet.cli_args import (
        add_device_argument,
        add_model_arguments,
        add_model_folder_argument,
        add_trust_checkpoint_argument,
        device_from_args,
        parse_folds,
        require_model_choice,
        resolve_model_folder,
    )
    from seganypet_nnunet.evaluation.protocol_cli import add_protocol_arguments, run_protocol
    from seganypet_nnunet.inference.click_policy import ClickPolicy

    p = argparse.ArgumentParser(description="Simulated-click interactive evaluation of a SegAnyPET model.")
    p.add_argument("-i", required=True, help="[REQUIRED] images folder (CASE_0000.nii.gz, nnU-Net raw layout)")
    p.add_argument("-ref", required=True, help="[REQUIRED] reference labels folder (CASE.nii.gz)")
    p.add_argument("-o", required=True, help="[REQUIRED] output folder (summary.json, dice_vs_clicks.png)")
    add_model_arguments(p, dataset_required=False, default_folds=["0"])
    add_model_folder_argument(p)
    p.add_argument("-n_clicks", type=int, default=5, help="[OPTIONAL] clicks per target. Default: 5")
    p.add_argument("-tolerance_mm", type=float, default=2.0, help="[OPTIONAL] NSD tolerance in mm. Default: 2")
    p.add_argument("-targets", nargs="+", default=None, help="[OPTIONAL] structure names to evaluate (dataset.json)")
    p.add_argument(
        "-lesion_labels",
        nargs="+",
        default=list(DEFAULT_LESION_NAMES),
        help="[OPTIONAL] structure names split into lesion instances",
    )
    p.add_argument("-instances", default=None, help="[OPTIONAL] instance maps folder (CASE.nii.gz, 0 = none)")
    p.add_argument("--random_clicks", action="store_true", help="[OPTIONAL] seeded random clicks (see -seed)")
    p.add_argument("-seed", type=int, default=0, help="[OPTIONAL] seed for --random_clicks. Default: 0")
    p.add_argument("-auto_pred", default=None, help="[OPTIONAL] automatic-mode segmentations folder")
    p.add_argument("-baseline_pred", default=None, help="[OPTIONAL] nnU-Net baseline segmentations folder")
    p.add_argument(
        "--reference_methods",
        action="store_true",
        help="[OPTIONAL] also score the PET reader's threshold methods (41/50 %% of local SUVmax, SUV 2.5/4.0, PERCIST "
        "liver) from each target's first click",
    )
    p.add_argument(
        "-liver_voi",
        default=None,
        help="[OPTIONAL] JSON {case: [x, y, z]} world mm LPS centres of PERCIST's 3-cm liver VOI (cases without a "
        "liver label)",
    )
    p.add_argument(
        "--bare_network",
        action="store_true",
        help="[OPTIONAL] clicks go to the network alone: no PET prior, click consistency or local corrections",
    )
    add_device_argument(p)
    add_trust_checkpoint_argument(p)
    add_protocol_arguments(p)  # --protocol clicks|sam_med3d|both|autopet_iv|autopet_v
    a = p.parse_args(argv)
    require_model_choice(p, a)
    validation.check_output_folder(a.o, {"-i": a.i, "-ref": a.ref})
    device = device_from_args(a).type
    a.m = resolve_model_folder(a)
    with as_user_error("-f"):
        folds = parse_folds(a.f)
    if a.protocol in ("autopet_iv", "autopet_v"):
        run_protocol(a, folds)
        return
    common = dict(
        folds=folds,
        checkpoint=a.chk,
        device=device,
        instances_dir=Path(a.instances) if a.instances else None,
        n_clicks=a.n_clicks,
        tolerance_mm=a.tolerance_mm,
        target_names=a.targets,
        lesion_names=a.lesion_labels,
        trust_checkpoint=a.trust_checkpoint,
    )
    folders = (a.m, Path(a.i), Path(a.ref), Path(a.o))
    if a.protocol in ("sam_med3d", "both"):
        from seganypet_nnunet.evaluation.sam_med3d_protocol import evaluate_model_folder_sam_med3d

        evaluate_model_folder_sam_med3d(*folders, seed=a.seed, **common)
        if a.protocol == "sam_med3d":
            return
    liver_voi = io_utils.read_json_object(Path(a.liver_voi)) if a.liver_voi else None
    summary = evaluate_model_folder(
        *folders,
        seed=a.seed if a.random_clicks else None,
        reference_methods=a.reference_methods,
        liver_voi=liver_voi,
        click_policy=ClickPolicy.off() if a.bare_network else None,
        auto_pred=Path(a.auto_pred) if a.auto_pred else None,
        baseline_pred=Path(a.baseline_pred) if a.baseline_pred else None,
        **common,
    )
    rows = S.structure_table(summary, S.table_clicks(a.n_clicks))
    print("\nDice per structure (mean over targets):\n")
    print(S.format_structure_table(rows, summary["settings"]["heldout_structures"]))
    if a.reference_methods:
        print("\nPET reader's methods from the same first click (mean Dice per structure):\n")
        print(S.format_reference_table(summary))
    print(f"\nsummary: {Path(a.o) / 'summary.json'}\nplot:    {Path(a.o) / 'dice_vs_clicks.png'}")


if __name__ == "__main__":
    evaluate_entry()
