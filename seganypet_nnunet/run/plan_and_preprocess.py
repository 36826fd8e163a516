"""``seganypet_plan_and_preprocess``: one fingerprint, our plans + the nnU-Net baseline plans, both preprocessed.

Mirrors ``nnUNetv2_plan_and_preprocess`` but passes planner *class objects* to nnU-Net's
``plan_experiment_dataset`` (nnU-Net's ``-pl`` only finds classes inside nnunetv2). The baseline is planned from the
same fingerprint and preprocessed from the same raw cases, so both models train on identical data and splits.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

from seganypet_nnunet.errors import InputNotFoundError, SeganypetError, as_user_error, cli_entry
from seganypet_nnunet.paths import find_raw_dataset

DEFAULT_CONFIGURATIONS = ("3d_fullres",)
KNOWN_CONFIGURATIONS = ("2d", "3d_fullres", "3d_lowres", "3d_cascade_fullres")


# Configurations whose data is another configuration's (nnU-Net would preprocess 3d_fullres again for them).
def check_raw_dataset(raw_folder: Path) -> int:
    """Our checks of a raw dataset before nnU-Net's workers read it; returns the number of training cases.

    dataset.json readable with channel_names/labels/file_ending; every training case has exactly the channels of
    dataset.json, each image readable, 3D, not truncated, finite and not all zero, all on the label's grid; labels
    integer-valued and in dataset.json ``labels`` (nnU-Net checks the last two only with --verify_dataset_integrity).

    Raises:
        SeganypetError: one line naming the file and the problem.
    """
    import json

    from nnunetv2.utilities.utils import get_filenames_of_train_images_and_targets

    from seganypet_nnunet import validation

    ds_file = raw_folder / "dataset.json"
    try:
        dataset_json = json.loads(ds_file.read_text())
    except (OSError, ValueError) as err:
        raise SeganypetError(f"{ds_file}: unreadable dataset.json ({validation._last_line(err)})") from None
    missing = [k for k in ("channel_names", "labels", "file_ending") if k not in dataset_json]
    if missing:
        raise SeganypetError(f"{ds_file}: missing field(s) {', '.join(missing)}")
    ending, n_channels = dataset_json["file_ending"], len(dataset_json["channel_names"])
    if "dataset" not in dataset_json:
        validation.scan_input_folder(raw_folder / "imagesTr", ending, n_channels)  # names and channels first
    cases = get_filenames_of_train_images_and_targets(str(raw_folder), dataset_json)
    if not cases:
        raise SeganypetError(f"{raw_folder / 'imagesTr'}: no training cases")
    allowed = [v for v in dataset_json["labels"].values() if isinstance(v, int)]
    allowed += [x for v in dataset_json["labels"].values() if isinstance(v, (list, tuple)) for x in v]
    for case, entry in cases.items():
        label = entry["label"]
        if not Path(label).is_file():
            raise InputNotFoundError(f"{label}: case {case}: missing label file")
        header = validation.check_label_file(label, allowed)
        for image in entry["images"]:
            validation.check_same_grid(header, validation.read_checked_image(image), label, image)
    n = dataset_json.get("numTraining")
    if n is not None and n != len(cases):
        raise SeganypetError(f"{ds_file}: numTraining is {n} but {raw_folder / 'imagesTr'} holds {len(cases)} cases")
    return len(cases)


@contextlib.contextmanager
def planning_thread_setting() -> Iterator[None]:
    """Lets nnU-Net planners (stock and ours) run under ``nnUNet_n_proc_DA=0``.

    nnU-Net's ``ExperimentPlanner.static_estimate_VRAM_usage`` calls ``torch.set_num_threads(get_allowed_n_proc_DA())``,
    which raises for 0 (in-process augmentation, the CPU setting). Planning does no augmentation, so the variable is
    raised to 1 for the duration of planning only and restored afterwards.
    """
    value = os.environ.get("nnUNet_n_proc_DA")
    if value is None or int(value) > 0:
        yield
        return
    os.environ["nnUNet_n_proc_DA"] = "1"
    try:
        yield
    finally:
        os.environ["nnUNet_n_proc_DA"] = value


def format_plans_summary(plans: dict) -> str:
    """One line per 3d configuration: patch, batch, spacing, stages, features, normalisation, input transforms."""
    lines = [f"{plans['plans_name']} ({plans['dataset_name']}, planner {plans['experiment_planner_used']}):"]
    for name, cfg in plans["configurations"].items():
        if "architecture" not in cfg:
            lines.append(f"  {name}: inherits {cfg.get('inherits_from')}, previous stage {cfg.get('previous_stage')}")
            continue
        kw = cfg["architecture"]["arch_kwargs"]
        lines.append(
            f"  {name}: patch {list(cfg['patch_size'])} batch {cfg['batch_size']} spacing "
            f"{[round(float(s), 3) for s in cfg['spacing']]} stages {kw.get('n_stages', '-')} features "
            f"{list(kw.get('features_per_stage', []))} norm {list(cfg['normalization_schemes'])} "
            f"transforms {kw.get('input_transforms', '-')} "
            f"net {cfg['architecture']['network_class_name'].split('.')[-1]}"
        )
    return "\n".join(lines)


def plan_and_preprocess(
    dataset_ids: Sequence[int],
    *,
    planner: str = "SegAnyPETPlanner",
    configurations: Sequence[str] = DEFAULT_CONFIGURATIONS,
    num_processes: int | Sequence[int] | None = None,
    verify_dataset_integrity: bool = False,
    gpu_memory_target: float | None = None,
    overwrite_target_spacing: Sequence[float] | None = None,
    preprocess: bool = True,
    baseline: bool = True,
    clean: bool = False,
    fingerprint_processes: int | None = None,
    verbose: bool = False,
) -> dict:
    """Fingerprints each dataset once, plans ours (+ the nnU-Net baseline) from it, writes patient splits, preprocesses.

    Args:
        dataset_ids: nnU-Net dataset ids (folders ``$nnUNet_raw/DatasetXXX_Name``).
        planner: key of ``seganypet_nnunet.planners.PLANNERS``.
        configurations: configurations to preprocess (planning always plans all that nnU-Net would).
        num_processes: preprocessing processes, one int or one per configuration; default ``nnUNet_def_n_proc`` or 8.
        verify_dataset_integrity: run nnU-Net's integrity check before fingerprinting.
        gpu_memory_target: VRAM target in GB for both planners (None = planner default).
        overwrite_target_spacing: 3d_fullres target spacing (preprocessed axis order), as nnU-Net's flag.
        preprocess: False plans only (nnU-Net's ``--no_pp``).
        baseline: also plan/preprocess the matching nnU-Net baseline planner.
        clean: recompute an existing fingerprint (nnU-Net's ``--clean``).
        fingerprint_processes: processes for integrity check + fingerprint; default ``nnUNet_def_n_proc`` or 8.
        verbose: nnU-Net's verbose output and progress bars.

    Returns:
        ``{"plans_identifier": str, "baseline_plans_identifier": str | None, "datasets": {id: {"plans_file": str,
        "baseline_plans_file": str | None, "splits_file": str | None}}}``.

    Raises:
        KeyError: unknown planner name (lists the valid ones).
        FileNotFoundError: a dataset id is not in ``nnUNet_raw``.
        RuntimeError: an nnU-Net folder variable is not set.
    """
    from nnunetv2.experiment_planning.dataset_fingerprint.fingerprint_extractor import DatasetFingerprintExtractor
    from nnunetv2.experiment_planning.plan_and_preprocess_api import (
        extract_fingerprint_dataset,
        plan_experiment_dataset,
    )

    from seganypet_nnunet.paths import nnunet_folder
    from seganypet_nnunet.planners import PLANNERS, get_planner_pair
    from seganypet_nnunet.run.preprocessed import preprocess_configurations
    from seganypet_nnunet.splits import maybe_write_patient_splits

    if planner not in PLANNERS:
        raise SeganypetError(f"-pl {planner!r}: unknown planner; valid: {', '.join(PLANNERS)}")
    unknown = [c for c in configurations if c not in KNOWN_CONFIGURATIONS]
    if unknown or not configurations:
        raise SeganypetError(
            f"-c {' '.join(unknown) or '(none)'}: unknown configuration; valid: {', '.join(KNOWN_CONFIGURATIONS)}"
        )
    ours, reference = get_planner_pair(planner)
    raw_folders = {int(d): find_raw_dataset(d) for d in dataset_ids}
    nnunet_folder("nnUNet_preprocessed")
    for raw_folder in raw_folders.values():
        check_raw_dataset(raw_folder)
    default_np = int(os.environ.get("nnUNet_def_n_proc", 8))
    nps = [num_processes] if isinstance(num_processes, int) else list(num_processes or [default_np])
    spacing = [float(s) for s in overwrite_target_spacing] if overwrite_target_spacing is not None else None
    result: dict = {"plans_identifier": None, "baseline_plans_identifier": None, "datasets": {}}
    for dataset_id, raw_folder in raw_folders.items():
        extract_fingerprint_dataset(
            dataset_id,
            DatasetFingerprintExtractor,
            fingerprint_processes or default_np,
            verify_dataset_integrity,
            clean or _fingerprint_broken(nnunet_folder("nnUNet_preprocessed") / raw_folder.name),
            verbose,
            show_progress_bar=verbose,
        )
        with planning_thread_setting():
            planned = [
                plan_experiment_dataset(dataset_id, cls, gpu_memory_target, overwrite_target_spacing=spacing)
                for cls in ((ours, reference) if baseline else (ours,))
            ]
        preprocessed = nnunet_folder("nnUNet_preprocessed") / raw_folder.name
        case_ids = _training_case_ids(raw_folder)
        splits = maybe_write_patient_splits(raw_folder, preprocessed, case_ids)
        for plans, _ in planned:
            print(format_plans_summary(plans))
        print(f"splits: {splits if splits else 'kept ' + str(preprocessed / 'splits_final.json')}")
        plans_ids = [pid for _, pid in planned]
        missing = [c for c in configurations if c not in planned[0][0]["configurations"]]
        if missing:
            raise SeganypetError(
                f"-c {' '.join(missing)}: not planned for {raw_folder.name} (planned: "
                f"{', '.join(planned[0][0]['configurations'])})"
            )
        if preprocess:
            preprocess_configurations(dataset_id, plans_ids, configurations, nps, verbose, case_ids)
        result["plans_identifier"] = plans_ids[0]
        result["baseline_plans_identifier"] = plans_ids[1] if baseline else None
        result["datasets"][dataset_id] = {
            "plans_file": str(preprocessed / f"{plans_ids[0]}.json"),
            "baseline_plans_file": str(preprocessed / f"{plans_ids[1]}.json") if baseline else None,
            "splits_file": str(splits) if splits else None,
        }
    return result


def _fingerprint_broken(preprocessed: Path) -> bool:
    """True if a fingerprint file exists but cannot be read (a run killed while nnU-Net wrote it): recompute it."""
    import json

    path = preprocessed / "dataset_fingerprint.json"
    try:
        return path.is_file() and not isinstance(json.loads(path.read_text()), dict)
    except (OSError, ValueError):
        return True


def _training_case_ids(raw_folder: Path) -> list[str]:
    """nnU-Net's training case identifiers of a raw dataset folder (honours ``dataset`` / file_ending)."""
    import json

    from nnunetv2.utilities.utils import get_filenames_of_train_images_and_targets

    dataset_json = json.loads((raw_folder / "dataset.json").read_text())
    return sorted(get_filenames_of_train_images_and_targets(str(raw_folder), dataset_json))


@cli_entry("seganypet_plan_and_preprocess")
def plan_and_preprocess_entry(argv: list[str] | None = None) -> None:
    """Console script ``seganypet_plan_and_preprocess`` (nnU-Net flag grammar)."""
    import argparse

    from seganypet_nnunet.paths import nnunet_folder
    from seganypet_nnunet.planners import PLANNERS

    parser = argparse.ArgumentParser(description="Fingerprint, plan (SegAnyPET + nnU-Net baseline) and preprocess.")
    parser.add_argument("-d", nargs="+", type=int, required=True, help="[REQUIRED] Dataset ids, e.g. 901 902.")
    parser.add_argument(
        "-pl",
        default="SegAnyPETPlanner",
        help=f"[OPTIONAL] Planner preset, one of {', '.join(PLANNERS)}. Default: SegAnyPETPlanner.",
    )
    parser.add_argument(
        "-c",
        nargs="+",
        default=list(DEFAULT_CONFIGURATIONS),
        help="[OPTIONAL] Configurations to preprocess. Default: 3d_fullres.",
    )
    parser.add_argument(
        "-np",
        nargs="+",
        type=int,
        default=None,
        help="[OPTIONAL] Preprocessing processes: one number or one per configuration. "
        "Default: nnUNet_def_n_proc or 8.",
    )
    parser.add_argument(
        "-npfp",
        type=int,
        default=None,
        help="[OPTIONAL] Processes for integrity check and fingerprint. Default: nnUNet_def_n_proc or 8.",
    )
    parser.add_argument(
        "--verify_dataset_integrity",
        action="store_true",
        help="[RECOMMENDED] Run nnU-Net's dataset integrity check first.",
    )
    parser.add_argument(
        "-gpu_memory_target",
        type=float,
        default=None,
        help="[OPTIONAL] GPU memory target in GB for both planners. Default: planner default.",
    )
    parser.add_argument(
        "-overwrite_target_spacing",
        nargs=3,
        type=float,
        default=None,
        help="[OPTIONAL] 3d_fullres target spacing, three numbers (preprocessed axis order).",
    )
    parser.add_argument("--no_pp", action="store_true", help="[OPTIONAL] Plan only, do not preprocess.")
    parser.add_argument("--clean", action="store_true", help="[OPTIONAL] Recompute an existing fingerprint.")
    parser.add_argument(
        "--no_baseline",
        action="store_true",
        help="[OPTIONAL] Do not plan/preprocess the matching nnU-Net baseline plans.",
    )
    parser.add_argument("--verbose", action="store_true", help="[OPTIONAL] Verbose nnU-Net output, progress bars.")
    args = parser.parse_args(argv)
    for variable in ("nnUNet_raw", "nnUNet_preprocessed"):
        nnunet_folder(variable)
    if args.np is not None and any(n < 1 for n in args.np):
        raise SeganypetError(f"-np {args.np}: process counts must be >= 1")
    if args.npfp is not None and args.npfp < 1:
        raise SeganypetError(f"-npfp {args.npfp}: process count must be >= 1")
    if args.overwrite_target_spacing is not None:
        import math

        from seganypet_nnunet.validation import SPACING_RANGE_MM

        low, high = SPACING_RANGE_MM
        if not all(math.isfinite(s) and low <= s <= high for s in args.overwrite_target_spacing):
            raise SeganypetError(
                f"-overwrite_target_spacing {args.overwrite_target_spacing}: spacings must lie in {low:g}-{high:g} mm"
            )
    from seganypet_nnunet.io_utils import space_errors
    from seganypet_nnunet.run.preprocessed import removed_if_out_of_space

    with as_user_error("-d", KeyError), removed_if_out_of_space(), space_errors(nnunet_folder("nnUNet_preprocessed")):
        result = plan_and_preprocess(
            args.d,
            planner=args.pl,
            configurations=args.c,
            num_processes=args.np,
            verify_dataset_integrity=args.verify_dataset_integrity,
            gpu_memory_target=args.gpu_memory_target,
            overwrite_target_spacing=args.overwrite_target_spacing,
            preprocess=not args.no_pp,
            baseline=not args.no_baseline,
            clean=args.clean,
            fingerprint_processes=args.npfp,
            verbose=args.verbose,
        )
    print(f"plans: {result['plans_identifier']}  baseline: {result['baseline_plans_identifier']}")


if __name__ == "__main__":
    plan_and_preprocess_entry()
