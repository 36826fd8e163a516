"""Training with mixed-quality labels: plain vs expert-only vs CPCL training on corrupted synthetic PET.

Per corruption level (``-corrupt_fractions``, default 0 %, 30 %, 60 % of the training cases; the ops of
``synthetic/corruption.py``, ``low_quality_cases.json`` marks them) one synthetic dataset whose test labels are clean.
Three trainers get the SAME budget (``-epochs`` x ``-iters``), the same plans and, per seed, the same torch / numpy /
prompt seeds: ``-plain`` on all cases, ``-expert`` on the expert cases only, ``-cpcl`` on all cases (and, with
``-cpcl_warmup W ...``, ``-cpcl`` whose weighting starts after W plain epochs). At 0 % these are the same training
by construction (no low-quality case), so only ``-plain`` runs there. Each model is scored on the
clean test labels: automatic Dice (nnU-Net head without mirroring; nnU-Net's end-of-training validation is skipped)
and prompted Dice after 1, 3 and ``-clicks`` simulated clicks (``seganypet_evaluate``'s protocol), mean over
structures; the per-structure values go to ``-o``/results.json. ``ms/it`` is the median ``train_step`` time.

    python bench/bench_cpcl.py                                    # 20 train, 4 test, 0/30/60 %, 3 seeds, CPU
    python bench/bench_cpcl.py -seeds 0 -epochs 1 -iters 2 -num_train 6 -num_test 1 -clicks 1 -planner \
        SegAnyPETPlannerTiny -corrupt_fractions 0.5 -o /tmp/bench_cpcl_smoke  # smoke run (minutes; numbers meaningless)
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from seganypet_nnunet.cli_args import CUDA
from seganypet_nnunet.evaluation.summary import table_clicks

DATASET_ID = 988  # the first corruption level; the next ones count down
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


def run_one(trainer_class: type, raw: Path, plans: str, work: Path, seed: int, dataset_id: int, args) -> dict:
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
        trainer_class, dataset_id, CONFIGURATION, 0, plans_identifier=plans, device=make_device(args.device)
    )
    model = (
        results
        / dataset_folder_name(dataset_id, raw.name.split("_", 1)[1])
        / f"{trainer_class.__name__}__{plans}__{CONFIGURATION}"
    )
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
    rows = structure_table(summary, table_clicks(args.clicks))
    return {
        "auto": _mean(rows, "automatic"),
        **{f"click_{k}": _mean(rows, f"dice_click_{k}") for k in table_clicks(args.clicks)},
        "ms_per_it": 1000 * statistics.median(trainer.step_seconds),
        "per_structure": rows,
    }


def _mean_sd(rows: list[dict], key: str) -> str:
    values = [r[key] for r in rows if r.get(key) is not None and np.isfinite(r[key])]
    if not values:
        return "n/a"
    return f"{np.mean(values):.3f} ± {np.std(values, ddof=1) if len(values) > 1 else 0.0:.3f}"


def print_table(table: dict, args) -> None:
    """Per corruption level and trainer: seed rows, then mean ± sd (sample sd over seeds), then ratio to plain."""
    keys = ("auto", *(f"click_{k}" for k in table_clicks(args.clicks)))
    head = f"{'level':>5}  {'trainer':<28} {'seed':>4} " + " ".join(f"{k:>15}" for k in keys) + f" {'ms/it':>7}"
    print(
        f"\n{args.num_train} training cases, {args.num_test} clean test cases; budget {args.epochs} x {args.iters}"
        f" iterations, {args.planner}, device {args.device}; Dice = mean over structures\n"
    )
    print(head)
    for level, per_trainer in table.items():
        plain = per_trainer[args.plain]
        for name, rows in per_trainer.items():
            for r in rows:
                cells = " ".join(f"{r[k]:>15.3f}" for k in keys)
                print(f"{level:>5}  {name:<28} {r['seed']:>4} {cells} {r['ms_per_it']:>7.0f}")
            cells = " ".join(f"{_mean_sd(rows, k):>15}" for k in keys)
            print(f"{level:>5}  {name + ' (mean ± sd)':<28} {'':>4} {cells} {_mean(rows, 'ms_per_it'):>7.0f}")
            if name != args.plain:
                ratio = " ".join(f"{_mean(rows, k) / _mean(plain, k):>15.3f}" for k in keys)
                cost = _mean(rows, "ms_per_it") / _mean(plain, "ms_per_it")
                print(f"{level:>5}  {'  ratio to ' + args.plain:<28} {'':>4} {ratio} {cost:>7.2f}")


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
    p.add_argument(
        "-corrupt_fractions", type=float, nargs="+", default=[0.0, 0.3, 0.6], help="[OPTIONAL] Default: 0 0.3 0.6"
    )
    p.add_argument("-seeds", type=int, nargs="+", default=[0, 1, 2], help="[OPTIONAL] training seeds. Default: 0 1 2")
    p.add_argument("-epochs", type=int, default=10, help="[OPTIONAL] epochs per run. Default: 10")
    p.add_argument("-iters", type=int, default=40, help="[OPTIONAL] iterations per epoch. Default: 40")
    p.add_argument("-clicks", type=int, default=5, help="[OPTIONAL] simulated clicks in evaluation. Default: 5")
    p.add_argument("-planner", default="SegAnyPETPlannerSmall", help="[OPTIONAL] planner. Default: Small")
    p.add_argument("-plain", default="SegAnyPETTrainer", help="[OPTIONAL] trainer without CPCL (registry name)")
    p.add_argument("-expert", default="SegAnyPETTrainer_expertOnly", help="[OPTIONAL] expert-only trainer")
    p.add_argument("-cpcl", default="SegAnyPETTrainerCPCL", help="[OPTIONAL] CPCL trainer (registry name)")
    p.add_argument(
        "-cpcl_warmup",
        type=int,
        nargs="*",
        default=[],
        help="[OPTIONAL] also run -cpcl with these warm-up epochs (plain training before CPCL weighting starts)",
    )
    p.add_argument("-device", default="cpu", help="[OPTIONAL] cpu or cuda")
    a = p.parse_args()

    out = Path(a.o).resolve()
    for name in ("nnUNet_raw", "nnUNet_preprocessed"):
        (out / name).mkdir(parents=True, exist_ok=True)
        os.environ[name] = str(out / name)
    os.environ.setdefault("nnUNet_def_n_proc", str(os.cpu_count() or 2))
    os.environ.setdefault("nnUNet_n_proc_DA", "0")
    budget = {"num_epochs": a.epochs, "num_iterations_per_epoch": a.iters, "num_val_iterations_per_epoch": 2}
    table: dict[str, dict[str, list[dict]]] = {}
    for i, fraction in enumerate(a.corrupt_fractions):
        dataset_id, level = DATASET_ID - i, f"{fraction:.0%}"
        raw = make_dataset(
            dataset_id,
            f"{a.name}{round(100 * fraction)}",
            a.num_train,
            a.num_test,
            SyntheticConfig(size="small"),
            0,
            corruption=LabelCorruption(fraction=fraction),
        )
        plans = plan_and_preprocess([dataset_id], planner=a.planner, configurations=(CONFIGURATION,), baseline=False)
        warmups = {f"{a.cpcl}+warmup{w}": w for w in a.cpcl_warmup}
        names = [a.plain] if fraction == 0 else [a.plain, a.expert, a.cpcl, *warmups]
        table[level] = {name: [] for name in names}
        for seed in a.seeds:
            for name in names:
                cls = bench_class(get_trainer_class(name.split("+")[0]), budget, seed)
                if name in warmups:
                    cls.cpcl = dataclasses.replace(cls.cpcl, warmup_epochs=warmups[name])
                work = out / f"level{round(100 * fraction)}" / f"seed{seed}" / name
                row = run_one(cls, raw, plans["plans_identifier"], work, seed, dataset_id, a)
                table[level][name].append({"seed": seed, **row})
                print(
                    f"[bench_cpcl] {level} {name} seed {seed}: "
                    + ", ".join(f"{k} {v:.3f}" for k, v in row.items() if k != "per_structure"),
                    flush=True,
                )
    (out / "results.json").write_text(json.dumps({"settings": vars(a), "table": table}, indent=1))
    print_table(table, a)
    print(f"\nper-structure rows: {out / 'results.json'}")


if __name__ == "__main__":
    main()
