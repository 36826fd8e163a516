"""``seganypet_demo``: the whole product on built-in synthetic whole-body PET, in minutes on a 2-core CPU.

Generate a dataset → plan and preprocess (ours + the nnU-Net baseline, same fingerprint, same backbone) → train a small
SegAnyPET model and the nnU-Net baseline on the same short budget → predict automatically → simulate clicks and
evaluate → print a table per structure and write the Dice-vs-clicks plot and an MIP overlay picture.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from seganypet_nnunet.errors import cli_entry
from seganypet_nnunet.pretrained import REFERENCE_MODEL

DEMO_PLANNER = "SegAnyPETPlannerSmall"
CONFIGURATION = "3d_fullres"
CLICKS = (1, 3, 5)


@dataclass(frozen=True)
class DemoSettings:
    """What the demo runs. The trainers' budgets live in their classes (``trainers/variants.py``, ``baselines.py``)."""

    output: Path
    dataset_id: int = 990
    dataset_name: str = "SegAnyPETDemo"
    num_train: int = 10
    num_test: int = 3
    seed: int = 0
    device: str = "cpu"
    planner: str = DEMO_PLANNER
    trainer: str = "SegAnyPETTrainer_demo"
    baseline_trainer: str = "nnUNetTrainer_seganypet_demo"
    n_clicks: int = max(CLICKS)
    pretrained: str | None = None  # a packaged model's name: click on it instead of training (run_pretrained_demo)


@contextlib.contextmanager
def _step(title: str) -> Iterator[None]:
    start = time.perf_counter()
    print(f"\n==> {title}", flush=True)
    yield
    print(f"    done in {time.perf_counter() - start:.0f} s", flush=True)


def _use_folders(output: Path) -> dict[str, Path]:
    """Points nnU-Net's folder variables at ``output`` for this process and its workers (at run time only)."""
    folders = {name: output / name for name in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results")}
    for name, path in folders.items():
        path.mkdir(parents=True, exist_ok=True)
        os.environ[name] = str(path)
    os.environ.setdefault("nnUNet_def_n_proc", str(os.cpu_count() or 2))
    os.environ.setdefault("nnUNet_n_proc_DA", "0")  # in-process augmentation was fastest on 2 cores
    return folders


def _model_folder(results: Path, settings: DemoSettings, trainer: str, plans: str) -> Path:
    from seganypet_nnunet.paths import dataset_folder_name

    name = dataset_folder_name(settings.dataset_id, settings.dataset_name)
    return results / name / f"{trainer}__{plans}__{CONFIGURATION}"


def _train(settings: DemoSettings, trainer_name: str, plans: str) -> None:
    from seganypet_nnunet.cli_args import make_device
    from seganypet_nnunet.run.train import train_with_class
    from seganypet_nnunet.trainers.registry import get_trainer_class

    train_with_class(
        get_trainer_class(trainer_name),
        settings.dataset_id,
        CONFIGURATION,
        0,
        plans_identifier=plans,
        device=make_device(settings.device),
    )


def _overlay(raw: Path, case_id: str, predictions: dict[str, Path], target: Path, labels: dict[str, int]) -> Path:
    import SimpleITK as sitk

    from seganypet_nnunet.evaluation.plot import plot_mip_overlay

    pet = sitk.ReadImage(str(raw / "imagesTs" / f"{case_id}_0000.nii.gz"))
    panels = {"reference": sitk.GetArrayFromImage(sitk.ReadImage(str(raw / "labelsTs" / f"{case_id}.nii.gz")))}
    for title, folder in predictions.items():
        panels[title] = sitk.GetArrayFromImage(sitk.ReadImage(str(folder / f"{case_id}.nii.gz")))
    spacing_zyx = tuple(reversed(pet.GetSpacing()))
    names = {v: k for k, v in labels.items()}
    return plot_mip_overlay(sitk.GetArrayFromImage(pet), panels, spacing_zyx, target, names, title=case_id)


def run_demo(settings: DemoSettings) -> dict:
    """Runs the demo end to end and returns ``{"table": rows, "summary": path, "plot": path, "overlay": path}``."""
    from seganypet_nnunet.evaluation.interactive import evaluate_model_folder
    from seganypet_nnunet.inference.predict import predict_automatic
    from seganypet_nnunet.run.plan_and_preprocess import plan_and_preprocess
    from seganypet_nnunet.synthetic import SyntheticConfig, make_dataset

    check_settings(settings)
    start = time.perf_counter()
    folders = _use_folders(settings.output.resolve())
    with _step(f"1/6 synthetic whole-body PET: {settings.num_train} training + {settings.num_test} test cases"):
        raw = make_dataset(
            settings.dataset_id,
            settings.dataset_name,
            settings.num_train,
            settings.num_test,
            SyntheticConfig(size="small"),
            seed=settings.seed,
        )
    with _step(f"2/6 seganypet_plan_and_preprocess -pl {settings.planner} (ours + nnU-Net baseline, one fingerprint)"):
        plans = plan_and_preprocess([settings.dataset_id], planner=settings.planner, configurations=(CONFIGURATION,))
    ours_plans, base_plans = plans["plans_identifier"], plans["baseline_plans_identifier"]
    with _step(f"3/6 train {settings.trainer} ({ours_plans}, fold 0, {settings.device})"):
        _train(settings, settings.trainer, ours_plans)
    with _step(f"4/6 train the nnU-Net baseline {settings.baseline_trainer} ({base_plans}, fold 0)"):
        _train(settings, settings.baseline_trainer, base_plans)
    ours = _model_folder(folders["nnUNet_results"], settings, settings.trainer, ours_plans)
    base = _model_folder(folders["nnUNet_results"], settings, settings.baseline_trainer, base_plans)
    pred = {"ours automatic": settings.output / "pred_seganypet", "nnU-Net automatic": settings.output / "pred_nnunet"}
    with _step("5/6 automatic prediction of the test cases (ours and nnU-Net)"):
        for folder, model in ((pred["ours automatic"], ours), (pred["nnU-Net automatic"], base)):
            predict_automatic(model, raw / "imagesTs", folder, folds=(0,), device=settings.device, npp=0, nps=0)
    with _step(f"6/6 seganypet_evaluate: {settings.n_clicks} simulated clicks per structure and lesion"):
        summary = evaluate_model_folder(
            ours,
            raw / "imagesTs",
            raw / "labelsTs",
            settings.output / "evaluation",
            folds=(0,),
            device=settings.device,
            instances_dir=raw / "instancesTs",
            n_clicks=settings.n_clicks,
            auto_pred=pred["ours automatic"],
            baseline_pred=pred["nnU-Net automatic"],
            reference_methods=True,
        )
    heading = "Dice per structure (test cases, mean over targets; clicks simulated from the reference):"
    return _report(settings, raw, summary, pred, heading, start)


def _report(settings: DemoSettings, raw: Path, summary: dict, pred: dict[str, Path], heading: str, start: float):
    """Prints the demo's tables and file paths, draws the MIP overlay of the first test case; ``run_demo``'s result."""
    from seganypet_nnunet.evaluation.summary import format_reference_table, format_structure_table, structure_table
    from seganypet_nnunet.machine import machine_line

    rows = structure_table(summary, CLICKS)
    unseen = tuple(summary["settings"]["heldout_structures"])
    case_id = sorted(summary["cases"])[0]
    labels = json.loads((raw / "dataset.json").read_text())["labels"]
    overlay = _overlay(raw, case_id, pred, settings.output / "overlay_mip.png", labels)
    print(f"\n{heading}\n")
    print(format_structure_table(rows, unseen))
    print("\nThe PET reader's threshold methods from the model's first click (mean Dice per structure):\n")
    print(format_reference_table(summary))
    evaluation = settings.output / "evaluation"
    print(
        f"\nsummary: {evaluation / 'summary.json'}\nplot:    {evaluation / 'dice_vs_clicks.png'}\n"
        f"overlay: {overlay}\ntotal:   {(time.perf_counter() - start) / 60:.1f} min on {machine_line()}"
    )
    return {
        "table": rows,
        "summary": evaluation / "summary.json",
        "plot": evaluation / "dice_vs_clicks.png",
        "overlay": overlay,
        "unseen": unseen,
    }


def run_pretrained_demo(settings: DemoSettings) -> dict:
    """``seganypet_demo --pretrained``: click on a packaged model without training (test cases from the generator
    settings it was trained with, ``generator.json``, and generator seed ``settings.seed`` + 1000, never trained on);
    automatic prediction, simulated clicks with the reader's methods, the tables and the pictures. Same return value
    as ``run_demo``."""
    from seganypet_nnunet.evaluation.interactive import evaluate_model_folder
    from seganypet_nnunet.inference.predict import predict_automatic
    from seganypet_nnunet.io_utils import read_json_object
    from seganypet_nnunet.pretrained import resolve_model
    from seganypet_nnunet.synthetic import SyntheticConfig, make_dataset
    from seganypet_nnunet.synthetic.config import PRESETS

    check_settings(settings)
    start = time.perf_counter()
    model = resolve_model(settings.pretrained)
    generator = read_json_object(model / "generator.json")
    spacing = tuple(generator["spacing_mm"]) if generator.get("spacing_mm") else None
    config = SyntheticConfig(**PRESETS[generator["preset"]], tracer=generator["tracer"], spacing=spacing)
    _use_folders(settings.output.resolve())
    with _step(
        f"1/3 synthetic {generator['preset']} {generator['tracer'].upper()} PET: {settings.num_test} test cases"
    ):
        raw = make_dataset(
            settings.dataset_id, "PretrainedDemo", 1, settings.num_test, config, seed=settings.seed + 1000
        )
    pred = settings.output / "pred_seganypet"
    with _step(f"2/3 automatic prediction with the packaged model {settings.pretrained} ({model})"):
        predict_automatic(model, raw / "imagesTs", pred, folds=(0,), device=settings.device, npp=0, nps=0)
    with _step(f"3/3 seganypet_evaluate: {settings.n_clicks} simulated clicks per structure and lesion"):
        summary = evaluate_model_folder(
            model, raw / "imagesTs", raw / "labelsTs", settings.output / "evaluation", folds=(0,),
            device=settings.device, instances_dir=raw / "instancesTs", n_clicks=settings.n_clicks, auto_pred=pred,
            reference_methods=True,
        )  # fmt: skip
    heading = f"Dice per structure, packaged model {settings.pretrained} (model card: {model / 'MODEL_CARD.md'}):"
    return _report(settings, raw, summary, {"ours automatic": pred}, heading, start)


def check_settings(settings: DemoSettings) -> None:
    """Every setting checked before anything is created (folders, dataset): one line naming the flag.

    Raises:
        SeganypetError: an unavailable ``-device``, a dataset id outside 1..999, too few cases (a split needs 2
            training cases), a negative seed, ``--pretrained`` not a packaged model, or ``-o`` an existing file.
    """
    from seganypet_nnunet.errors import SeganypetError
    from seganypet_nnunet.validation import check_device

    if not 1 <= settings.dataset_id <= 999:
        raise SeganypetError(f"-d {settings.dataset_id}: dataset id must be between 1 and 999")
    if settings.num_train < 2:
        raise SeganypetError(f"-num_train {settings.num_train}: a split needs at least 2 training cases")
    if settings.num_test < 1:
        raise SeganypetError(f"-num_test {settings.num_test}: need at least 1 test case")
    if settings.seed < 0:
        raise SeganypetError(f"-seed {settings.seed}: must be >= 0")
    if settings.pretrained is not None:
        from seganypet_nnunet.pretrained import resolve_model

        if not (resolve_model(settings.pretrained) / "generator.json").is_file():
            raise SeganypetError(f"--pretrained {settings.pretrained}: not a packaged model (no generator.json)")
    if settings.output.exists() and not settings.output.is_dir():
        raise SeganypetError(f"{settings.output}: -o is an existing file, expected an output folder")
    check_device(settings.device)


@cli_entry("seganypet_demo")
def demo_entry(argv: list[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(
        description="SegAnyPET-in-nnU-Net demo on synthetic whole-body PET (timings: docs/benchmarks.md)."
    )
    parser.add_argument(
        "-o",
        default="seganypet_demo_output",
        help="[OPTIONAL] output folder (nnU-Net folders, "
        "predictions, evaluation, pictures). Default: ./seganypet_demo_output",
    )
    parser.add_argument("-d", type=int, default=990, help="[OPTIONAL] dataset id. Default: 990")
    parser.add_argument("-num_train", type=int, default=10, help="[OPTIONAL] training cases. Default: 10")
    parser.add_argument(
        "-num_test", type=int, default=None, help="[OPTIONAL] test cases. Default: 3 (1 with --pretrained)"
    )
    parser.add_argument("-seed", type=int, default=0, help="[OPTIONAL] generator seed. Default: 0")
    parser.add_argument("-device", default="cpu", choices=("cpu", "cuda", "mps"), help="[OPTIONAL] Default: cpu")
    parser.add_argument(
        "--pretrained",
        nargs="?",
        const=REFERENCE_MODEL,
        default=None,
        metavar="NAME",
        help=f"[OPTIONAL] click on a packaged model (default {REFERENCE_MODEL}) instead of training one: generate "
        "-num_test cases, predict, simulate clicks, evaluate (about a minute on a 2-core CPU)",
    )
    parser.add_argument("--verbose", action="store_true", help="[OPTIONAL] show tracebacks of errors")
    args = parser.parse_args(argv)
    num_test = args.num_test if args.num_test is not None else (1 if args.pretrained else 3)
    settings = DemoSettings(
        Path(args.o), args.d, num_train=args.num_train, num_test=num_test, seed=args.seed, device=args.device,
        pretrained=args.pretrained,
    )  # fmt: skip
    check_settings(settings)
    np.seterr(all="ignore")
    run_pretrained_demo(settings) if settings.pretrained else run_demo(settings)


if __name__ == "__main__":
    demo_entry()
