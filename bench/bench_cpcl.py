"""Training with mixed-quality labels: SegAnyPETTrainer vs SegAnyPETTrainerCPCL on corrupted synthetic PET.

One synthetic dataset whose training labels are partly corrupted (``-corrupt_fraction``, the ops of
``synthetic/corruption.py``; ``low_quality_cases.json`` marks them) and whose test labels are clean. Both trainers get
the SAME budget (``-epochs`` x ``-iters``), the same plans and, per seed, the same torch / numpy / prompt seeds. Each
model is scored on the clean test labels: automatic Dice (nnU-Net head without mirroring, mean over structures;
nnU-Net's end-of-training validation is skipped) and prompted Dice after
1 and ``-clicks`` simulated clicks (``seganypet_evaluate``'s protocol). ``ms/it`` is the median ``train_step`` time.

    python bench/bench_cpcl.py                                    # 20 train (50 % corrupted), 4 test, 3 seeds, CPU
    python bench/bench_cpcl.py -seeds 0 -epochs 1 -iters 2 -num_train 6 -num_test 1 -clicks 1 -planner \
        SegAnyPETPlannerTiny -o /tmp/bench_cpcl_smoke                 # smoke run (minutes; numbers meaningless)
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from seganypet_nnunet.cli_args import CUDA

DATASET_ID = 988
CONFIGURATION = "3d_fullres"


def bench_class(base: type, budget: dict, seed: int) -> type:
    """``base`` with ``budget``, seeded prompt simulation and a per-step timer (``step_seconds``)."""

    def __init__(self, plans, configuration, fold, dataset_json, device=CUDA):
        # nnU-Net records __init__'s parameters by name: keep its signature
        base.__init__(self, plans, configuration, fold, dataset_json, device)
        self.prompt_rng = np.random.default_rng(seed)
        self.step_seconds = []

    def train_step(self, batch):
        start = time.perf_counter()
        out = base.train_step(self, batch)
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        self.step_seconds.append(time.perf_counter() - start)
        return out

    def perform_actual_validation(self, save_probabilities: bool = False) -> None:
        """Skipped: the bench scores the clean test set instead of nnU-Net's validation fold."""

    name = f"{base.__name__}_bench"
    methods = {"__init__": __init__, "train_step": train_step, "perform_actual_validation": perform_actual_validation}
    return type(name, (base,), {"budget": budget, **methods})


def _mean(rows: list[dict], key: str) -> float:
    values = [r[key] for r in rows if r.get(key) is not None]
    return float(np.mean(values)) if values else float("nan")


def run_one(trainer_class: type, raw: Path, plans: str, work: Path, seed: int, args) -> dict:
    """Train fold 0 (all folders under ``work``), predict + evaluate on the clean test set; one table row."""
    from seganypet_nnunet.cli_args import make_device
    from seganypet_nnunet.evaluation.interactive import evaluate_model_folder
    from seganypet_nnunet.evaluation.summary import structure_table
    from seganypet_nnunet.inference.predict import predict_automatic
    from seganypet_nnunet.paths import dataset_folder_name
    from seganypet_nnunet.run.train import train_with_class

    results = work / "nnUNet_results"
    os.environ["nnUNet_results"] = str(results)
    torch.manual_seed(seed)
    np.random.seed(seed)
    trainer = train_with_class(
        trainer_class, DATASET_ID, CONFIGURATION, 0, plans_identifier=plans, device=make_device(args.device)
    )
    model = results / dataset_folder_name(DATASET_ID, args.name) / f"{trainer_class.__name__}__{plans}__{CONFIGURATION}"
    pred = work / "pred_auto"
    predict_automatic(model, raw / "imagesTs", pred, folds=(0,), device=args.device, disable_tta=True, npp=0, nps=0)
    summary = evaluate_model_folder(
        model,
        raw / "imagesTs",
        raw / "labelsTs",
        work / "evaluation",
        folds=(0,),
        device=args.device,
        instances_dir=raw / "instancesTs",
        n_clicks=args.clicks,
        auto_pred=pred,
    )
    rows = structure_table(summary, sorted({1, args.clicks}))
    return {
        "auto": _mean(rows, "automatic"),
        "click_1": _mean(rows, "dice_click_1"),
        "click_n": _mean(rows, f"dice_click_{args.clicks}"),
        "ms_per_it": 1000 * statistics.median(trainer.step_seconds),
    }


def main() -> None:
    from seganypet_nnunet.run.plan_and_preprocess import plan_and_preprocess
    from seganypet_nnunet.synthetic import SyntheticConfig, make_dataset
    from seganypet_nnunet.synthetic.corruption import LabelCorruption
    from seganypet_nnunet.trainers.registry import get_trainer_class

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-o", default="/tmp/seganypet_bench_cpcl", help="[OPTIONAL] work folder")
    p.add_argument("-name", default="CPCLBench", help="[OPTIONAL] dataset name")
    p.add_argument("-num_train", type=int, default=20, help="[OPTIONAL] training cases. Default: 20")
    p.add_argument("-num_test", type=int, default=4, help="[OPTIONAL] clean test cases. Default: 4")
    p.add_argument("-corrupt_fraction", type=float, default=0.5, help="[OPTIONAL] low-quality share. Default: 0.5")
    p.add_argument("-seeds", type=int, nargs="+", default=[0, 1, 2], help="[OPTIONAL] training seeds. Default: 0 1 2")
    p.add_argument("-epochs", type=int, default=10, help="[OPTIONAL] epochs per run. Default: 10")
    p.add_argument("-iters", type=int, default=40, help="[OPTIONAL] iterations per epoch. Default: 40")
    p.add_argument("-clicks", type=int, default=3, help="[OPTIONAL] simulated clicks in evaluation. Default: 3")
    p.add_argument("-planner", default="SegAnyPETPlannerSmall", help="[OPTIONAL] planner. Default: Small")
    p.add_argument("-plain", default="SegAnyPETTrainer", help="[OPTIONAL] trainer without CPCL (registry name)")
    p.add_argument("-cpcl", default="SegAnyPETTrainerCPCL", help="[OPTIONAL] CPCL trainer (registry name)")
    p.add_argument("-device", default="cpu", help="[OPTIONAL] cpu or cuda")
    a = p.parse_args()

    out = Path(a.o).resolve()
    for name in ("nnUNet_raw", "nnUNet_preprocessed"):
        (out / name).mkdir(parents=True, exist_ok=True)
        os.environ[name] = str(out / name)
    os.environ.setdefault("nnUNet_def_n_proc", str(os.cpu_count() or 2))
    os.environ.setdefault("nnUNet_n_proc_DA", "0")
    raw = make_dataset(
        DATASET_ID,
        a.name,
        a.num_train,
        a.num_test,
        SyntheticConfig(size="small"),
        0,
        corruption=LabelCorruption(fraction=a.corrupt_fraction),
    )
    plans = plan_and_preprocess([DATASET_ID], planner=a.planner, configurations=(CONFIGURATION,), baseline=False)
    plans_id = plans["plans_identifier"]
    budget = {"num_epochs": a.epochs, "num_iterations_per_epoch": a.iters, "num_val_iterations_per_epoch": 2}
    table: dict[str, list[dict]] = {a.plain: [], a.cpcl: []}
    for seed in a.seeds:
        for name in table:
            cls = bench_class(get_trainer_class(name), budget, seed)
            row = run_one(cls, raw, plans_id, out / f"seed{seed}" / name, seed, a)
            table[name].append({"seed": seed, **row})

    print(
        f"\n{a.num_train} training cases ({a.corrupt_fraction:.0%} low quality), {a.num_test} clean test cases; "
        f"budget {a.epochs} x {a.iters} iterations, {a.planner}, device {a.device}\n"
    )
    print(f"{'trainer':<28} {'seed':>4} {'auto Dice':>9} {'1 click':>8} {f'{a.clicks} clicks':>9} {'ms/it':>8}")
    for name, rows in table.items():
        for r in rows:
            print(
                f"{name:<28} {r['seed']:>4} {r['auto']:>9.3f} {r['click_1']:>8.3f} {r['click_n']:>9.3f} "
                f"{r['ms_per_it']:>8.0f}"
            )
    keys = ("auto", "click_1", "click_n", "ms_per_it")
    means = {name: {k: _mean(rows, k) for k in keys} for name, rows in table.items()}
    for name, m in means.items():
        print(
            f"{name + ' (mean)':<28} {'':>4} {m['auto']:>9.3f} {m['click_1']:>8.3f} {m['click_n']:>9.3f} "
            f"{m['ms_per_it']:>8.0f}"
        )
    c, q = means[a.cpcl], means[a.plain]
    print(
        f"{'ratio CPCL / plain':<28} {'':>4} {c['auto'] / q['auto']:>9.3f} {c['click_1'] / q['click_1']:>8.3f} "
        f"{c['click_n'] / q['click_n']:>9.3f} {c['ms_per_it'] / q['ms_per_it']:>8.2f}"
    )


if __name__ == "__main__":
    main()
