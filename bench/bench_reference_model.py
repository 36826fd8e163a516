"""Issue 22's reference run: SegAnyPETTrainer and the nnU-Net baseline trained on the realistic generator, judged.

Steps (everything under ``-o``):
1. training data: ``make_dataset`` with the ``-preset`` (default ``adult``: oncologic lesion population,
   docs/synthetic.md), ``-tracer`` and ``-spacing``, generator seed ``-train_seed``;
2. ``plan_and_preprocess`` with ``-pl`` (default ``SegAnyPETPlanner``: nnU-Net's default 3d_fullres plans, ours and
   the baseline's from one fingerprint);
3. per training seed, ``-tr`` and ``-btr`` on fold 0 at the SAME budget (``-epochs`` x ``-iters_per_epoch``), each in
   its own process with ``nnUNet_results=OUT/seed_S/nnUNet_results`` (torch/numpy/random seeded), then nnU-Net's
   validation into ``fold_0/validation``;
4. three test sets (``-test_seeds``, generator seeds never trained on: patient seeds differ from the training data's);
   per test set and training seed: automatic prediction by both models, ``seganypet_evaluate``'s click protocol with
   the reader's methods (``evaluate_model_folder(reference_methods=True)``), lesions by size class, autoPET IV (steps
   0-10, clicks simulated as ``bench_autopet_protocols.click_folder``) and autoPET V;
5. ``seganypet_compare`` (the command) of ``-tr`` against ``-btr`` on fold 0's validation cases per seed.
Prints mean ± sd over (training seed x test set) and the issue's targets met / missed; writes
``OUT/reference_model.json`` with the budget (iterations), training hours and the machine.

Tiny plumbing check (minutes on a CPU; numbers meaningless):
    python bench/bench_reference_model.py -o /tmp/ref_tiny -pl SegAnyPETPlannerTiny -spacing 8 8 8 -num_train 4 \
        -num_test 1 -epochs 1 -iters_per_epoch 2 -val_iters 1 -device cpu -targets liver lesion -iv_steps 9
The real budget (a GPU; docs/synthetic.md gives the command with its expected time):
    python bench/bench_reference_model.py -o ref_run -num_train 100 -num_test 10 -epochs 20 -iters_per_epoch 250 \
        -seeds 0 1 -device cuda
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

SIZE_CLASSES = (("<10mL", 0.0, 10.0), ("10-50mL", 10.0, 50.0), (">50mL", 50.0, float("inf")))
CLICKS = (1, 3, 5)


def train_one(spec: dict) -> None:
    """Child process: build the trainer, set the budget, train fold 0, validate (env already points at the seed)."""
    import torch

    from seganypet_nnunet.run.train import build_trainer
    from seganypet_nnunet.trainers.registry import get_trainer_class

    torch.manual_seed(spec["seed"])
    np.random.seed(spec["seed"])
    random.seed(spec["seed"])
    cls = get_trainer_class(spec["trainer"])
    t = build_trainer(cls, str(spec["dataset"]), "3d_fullres", 0, spec["plans"], device=torch.device(spec["device"]))
    t.num_epochs = spec["epochs"]
    t.num_iterations_per_epoch = spec["iters_per_epoch"]
    t.num_val_iterations_per_epoch = spec["val_iters"]
    t.save_every = max(1, min(10, spec["epochs"]))  # a run cut short keeps a recent checkpoint_latest
    t.run_training()
    t.perform_actual_validation()


def _train(a, dataset: int, trainer: str, plans: str, seed: int, env: dict) -> float | None:
    """Hours the training took; None when ``--reuse`` found fold 0 trained and validated already."""
    model = f"{trainer}__{plans}__3d_fullres"
    fold = Path(env["nnUNet_results"]) / f"Dataset{dataset:03d}_ReferencePET" / model / "fold_0"
    if a.reuse and (fold / "checkpoint_final.pth").is_file() and (fold / "validation" / "summary.json").is_file():
        print(f"reusing {fold} (--reuse)")
        return _logged_hours(fold)
    spec = {
        "trainer": trainer, "plans": plans, "dataset": dataset, "seed": seed, "device": a.device,
        "epochs": a.epochs, "iters_per_epoch": a.iters_per_epoch, "val_iters": a.val_iters,
    }  # fmt: skip
    start = time.perf_counter()
    subprocess.run([sys.executable, __file__, "--_train", json.dumps(spec)], env=env, check=True)
    return (time.perf_counter() - start) / 3600.0


def _logged_hours(fold: Path) -> float | None:
    """Hours from the first to the last timestamp of nnU-Net's training log in ``fold`` (a reused training)."""
    from datetime import datetime

    stamps = []
    for log in sorted(fold.glob("training_log_*.txt")):
        for line in log.read_text().splitlines():
            try:
                stamps.append(datetime.strptime(line[:26], "%Y-%m-%d %H:%M:%S.%f"))
            except ValueError:
                continue
    return (max(stamps) - min(stamps)).total_seconds() / 3600.0 if stamps else None


def size_classes(summary: dict, voxel_ml: dict[str, float]) -> dict:
    """Per size class: lesion targets' mean Dice after 1/3/5 clicks and each reader method / the oracle from click 1."""
    rows: dict[str, list[dict]] = {name: [] for name, _, _ in SIZE_CLASSES}
    for case_id, case in summary["cases"].items():
        for target in case["targets"].values():
            if target["kind"] != "instance":
                continue
            ml = target["voxels"] * voxel_ml[case_id]
            name = next(n for n, lo, hi in SIZE_CLASSES if lo <= ml < hi)
            row = {f"click_{k}": target["clicks"][k - 1]["dice"] for k in CLICKS if k <= len(target["clicks"])}
            row.update(target.get("reference_methods") or {})
            rows[name].append(row)
    out = {}
    for name, items in rows.items():
        keys = sorted({k for r in items for k in r})
        out[name] = {"n": len(items), **{k: _mean([r.get(k) for r in items]) for k in keys}}
    return out


def _mean(values) -> float | None:
    vals = [float(v) for v in values if isinstance(v, (int, float)) and np.isfinite(v)]  # skips oracle_choice
    return float(np.mean(vals)) if vals else None


def evaluate_test_set(a, raw: Path, ours: Path, base: Path | None, out: Path) -> dict:
    """One test set, one training seed (``out/test_set.json``, kept by ``--reuse``): automatic, clicks + reader
    methods, size classes, autoPET IV and V."""
    if a.reuse and (out / "test_set.json").is_file():
        print(f"reusing {out / 'test_set.json'} (--reuse)")
        return json.loads((out / "test_set.json").read_text())
    result = _evaluate_test_set(a, raw, ours, base, out)
    (out / "test_set.json").write_text(json.dumps(result))
    return result


def _evaluate_test_set(a, raw: Path, ours: Path, base: Path | None, out: Path) -> dict:
    import SimpleITK as sitk
    from bench_autopet_protocols import click_folder

    from seganypet_nnunet.evaluation.autopet_iv import run_autopet_iv
    from seganypet_nnunet.evaluation.autopet_v import run_autopet_v
    from seganypet_nnunet.evaluation.interactive import evaluate_model_folder
    from seganypet_nnunet.evaluation.protocols import lesion_label, model_dataset_json
    from seganypet_nnunet.evaluation.summary import structure_table
    from seganypet_nnunet.inference.predict import predict_automatic

    pred = {"ours": out / "pred_ours", "base": out / "pred_nnunet" if base is not None else None}
    for key, model in (("ours", ours), ("base", base)) if base is not None else (("ours", ours),):
        # trusted: this run trained both models (stock nnUNetTrainer checkpoints hold numpy scalars)
        predict_automatic(
            model, raw / "imagesTs", pred[key], folds=(0,), device=a.device, npp=0, nps=0, trust_checkpoint=True
        )
    summary = evaluate_model_folder(
        ours, raw / "imagesTs", raw / "labelsTs", out / "evaluation", folds=(0,), device=a.device,
        instances_dir=raw / "instancesTs", n_clicks=max(CLICKS), auto_pred=pred["ours"], baseline_pred=pred["base"],
        reference_methods=True, target_names=a.targets,
    )  # fmt: skip
    voxel_ml = {
        c: float(np.prod(sitk.ReadImage(str(raw / "labelsTs" / f"{c}.nii.gz")).GetSpacing())) / 1000.0
        for c in summary["cases"]
    }
    value = lesion_label(model_dataset_json(ours)["labels"])
    clicks = click_folder(raw, out, value, a.click_seed)
    common = {"auto_pred": pred["ours"], "device": a.device}
    iv_out = out / "autopet_iv"
    iv = run_autopet_iv(ours, raw / "imagesTs", clicks, iv_out, ref_dir=raw / "labelsTs", n_steps=a.iv_steps, **common)
    try:
        v = run_autopet_v(
            ours, raw / "imagesTs", raw / "labelsTs", out / "autopet_v", n_scribbles=5, seed=a.click_seed, **common
        )["summary"]
    except ValueError as err:  # e.g. a model whose max_points is below what five scribbles add (Tiny plans)
        print(f"autoPET V not scored: {err}")
        v = {"error": str(err)}
    return {
        "structures": structure_table(summary, CLICKS),
        "reader_methods": {n: b.get("reference_methods") for n, b in summary["mean"]["per_structure"].items()},
        "size_classes": size_classes(summary, voxel_ml),
        "autopet_iv": iv["score"]["summary"]["overall"],
        "autopet_v": v,
    }


def _ms(values) -> str:
    vals = [v for v in values if v is not None]
    if not vals:
        return "n/a"
    return f"{np.mean(vals):.3f}±{np.std(vals, ddof=1) if len(vals) > 1 else 0.0:.3f}"


def report(runs: list[dict]) -> dict:
    """Prints the tables (mean ± sd over runs = training seed x test set) and returns the targets block."""
    names = sorted({r["structure"] for run in runs for r in run["structures"]})
    print("\nDice per structure (test sets), mean ± sd over training seeds x test sets:")
    heads = ["auto ours", "auto nnU", *(f"@{k}" for k in CLICKS), "best reader", "oracle"]
    print(f"{'structure':>12s} | " + " | ".join(f"{h:>11s}" for h in heads))
    for name in names:
        rows = [r for run in runs for r in run["structures"] if r["structure"] == name]
        cells = [_ms(r["automatic"] for r in rows), _ms(r["baseline"] for r in rows)]
        cells += [_ms(r.get(f"dice_click_{k}") for r in rows) for k in CLICKS]
        cells += [_ms(r.get("reader_best") for r in rows), _ms(r.get("oracle_threshold") for r in rows)]
        print(f"{name:>12s} | " + " | ".join(f"{c:>11s}" for c in cells))
    methods = sorted({m for run in runs for b in run["reader_methods"].values() if b for m in b})
    print("\nevery reader method from the first click (mean Dice per structure):")
    print(f"{'structure':>12s} | " + " | ".join(f"{m[:14]:>14s}" for m in methods))
    for name in names:
        vals = [[(run["reader_methods"].get(name) or {}).get(m) for run in runs] for m in methods]
        print(f"{name:>12s} | " + " | ".join(f"{_ms(v):>14s}" for v in vals))
    print("\nlesions by size class (per lesion instance; reader methods from the model's first click):")
    targets = {"lesion_click1_vs_best_reader": {}, "lesion_click5_vs_oracle": {}}
    for cls, _, _ in SIZE_CLASSES:
        blocks = [run["size_classes"][cls] for run in runs]
        n = sum(b["n"] for b in blocks)
        best = [max((b.get(m) for m in methods if m != "oracle_fraction" and b.get(m) is not None), default=None)
                for b in blocks]  # fmt: skip
        c1, c5, oracle = ([b.get(k) for b in blocks] for k in ("click_1", "click_5", "oracle_fraction"))
        print(f"{cls:>8s} (n={n:3d}): @1 {_ms(c1)} @3 {_ms(b.get('click_3') for b in blocks)} @5 {_ms(c5)} | "
              f"best reader {_ms(best)} | oracle {_ms(oracle)}")  # fmt: skip
        targets["lesion_click1_vs_best_reader"][cls] = _gap(c1, best)
        targets["lesion_click5_vs_oracle"][cls] = _gap(c5, oracle)
    steps = [[s["dice"] for s in run["autopet_iv"]["per_step"]] for run in runs]
    mean_steps = [_mean(col) for col in zip(*steps, strict=True)]
    print("\nautoPET IV (step 0 automatic, step k = k tumour + k background clicks), mean over runs:")
    print("step " + " ".join(f"{i:>6d}" for i in range(len(mean_steps))))
    print("Dice " + " ".join(f"{d:6.3f}" if d is not None else "   n/a" for d in mean_steps))
    for term in runs[0]["autopet_iv"]["terms"]:
        print(f"  {term}: {_ms(run['autopet_iv']['terms'][term] for run in runs)}")
    print(
        "autoPET V: "
        + ", ".join(f"{k} {_ms(run['autopet_v'].get(k) for run in runs)}" for k in ("auc_dice", "auc_dmm", "score"))
    )
    drops = [
        i
        for i in range(1, len(mean_steps))
        if None not in mean_steps[i - 1 : i + 1] and mean_steps[i] < mean_steps[i - 1]
    ]  # noqa: E501
    ours = [_mean(r["automatic"] for r in run["structures"]) for run in runs]
    base = [_mean(r["baseline"] for r in run["structures"]) for run in runs]
    ratio = _mean([o / b for o, b in zip(ours, base, strict=True) if o is not None and b])
    targets["autopet_iv_dice_never_falls"] = {"met": not drops, "falls_at_steps": drops}
    targets["automatic_ratio_vs_nnunet"] = {"ratio": ratio, "target": 0.95, "met": ratio is not None and ratio >= 0.95}
    print(f"\nautomatic mean Dice ours / nnU-Net (test sets): {_ms(ours)} / {_ms(base)}, ratio {ratio}")
    print("targets:", json.dumps(targets, indent=1))
    return targets


def _gap(ours, reference) -> dict:
    o, r = _mean(ours), _mean(reference)
    return {
        "ours": o,
        "reference": r,
        "gap": None if o is None or r is None else o - r,
        "met": None if o is None or r is None else o >= r,
    }


def machine(device: str) -> dict:
    import torch

    info = {"platform": platform.platform(), "python": platform.python_version(), "cpu_count": os.cpu_count(),
            "torch": torch.__version__, "device": device}  # fmt: skip
    if device == "cuda" and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-o", default="seganypet_reference_run", help="[OPTIONAL] work folder")
    p.add_argument("-d", type=int, default=960, help="[OPTIONAL] training dataset id (test sets: d+1..d+3)")
    p.add_argument("-preset", default="adult", help="[OPTIONAL] generator preset. Default: adult")
    p.add_argument("-tracer", default="fdg", choices=("fdg", "psma"))
    p.add_argument("-spacing", type=float, nargs=3, default=None, help="[OPTIONAL] mm (x y z). Default: the preset's")
    p.add_argument("-num_train", type=int, default=100)
    p.add_argument("-num_test", type=int, default=10, help="[OPTIONAL] cases per test set")
    p.add_argument("-train_seed", type=int, default=0, help="[OPTIONAL] generator seed of the training data")
    p.add_argument("-test_seeds", type=int, nargs=3, default=[101, 102, 103], help="[OPTIONAL] generator seeds")
    p.add_argument("-pl", default="SegAnyPETPlanner", help="[OPTIONAL] planner. Default: SegAnyPETPlanner")
    p.add_argument("-tr", default="SegAnyPETTrainer")
    p.add_argument(
        "-btr", default="nnUNetTrainer_seganypet",
        help="[OPTIONAL] baseline: stock nnU-Net training (baselines.py); 'none' skips it (no automatic comparison)",
    )  # fmt: skip
    p.add_argument("-epochs", type=int, default=20)
    p.add_argument("-iters_per_epoch", type=int, default=250)
    p.add_argument("-val_iters", type=int, default=50)
    p.add_argument("-seeds", type=int, nargs="+", default=[0], help="[OPTIONAL] training seeds")
    p.add_argument("-click_seed", type=int, default=0)
    p.add_argument("-device", default="cuda", choices=("cuda", "cpu"))
    p.add_argument("-targets", nargs="+", default=None, help="[OPTIONAL] evaluate only these structures")
    p.add_argument(
        "-iv_steps", type=int, default=11, help="[OPTIONAL] autoPET IV steps incl. step 0. Default: 11 (the protocol); "
        "step k holds 2k points, so a model with max_points 16 (Tiny plans) needs 9",
    )  # fmt: skip
    p.add_argument("--reuse", action="store_true", help="[OPTIONAL] keep the data, plans and trained folds in -o")
    p.add_argument("--_train", default=None, help=argparse.SUPPRESS)
    a = p.parse_args()
    if a._train:
        return train_one(json.loads(a._train))
    start = time.perf_counter()
    out = Path(a.o).resolve()
    for name in ("nnUNet_raw", "nnUNet_preprocessed"):
        (out / name).mkdir(parents=True, exist_ok=True)
        os.environ[name] = str(out / name)
    os.environ["nnUNet_results"] = str(out / f"seed_{a.seeds[0]}" / "nnUNet_results")
    os.environ.setdefault("nnUNet_def_n_proc", str(min(os.cpu_count() or 2, 8)))
    os.environ.setdefault("nnUNet_n_proc_DA", "0" if a.device == "cpu" else str(min(os.cpu_count() or 2, 12)))
    from seganypet_nnunet.run.plan_and_preprocess import plan_and_preprocess
    from seganypet_nnunet.synthetic import SyntheticConfig, make_dataset
    from seganypet_nnunet.synthetic.config import PRESETS

    config = SyntheticConfig(**PRESETS[a.preset], tracer=a.tracer, spacing=tuple(a.spacing) if a.spacing else None)
    ids_file = out / "plans_identifiers.json"
    names = [(a.d, "ReferencePET")] + [(a.d + 1 + i, f"ReferenceTest{i}") for i in range(len(a.test_seeds))]
    if a.reuse and ids_file.is_file():  # same flags, same seeds: the generator would write the same files again
        train_raw, *tests = (out / "nnUNet_raw" / f"Dataset{d:03d}_{n}" for d, n in names)
        ours_p, base_p = json.loads(ids_file.read_text())
    else:
        train_raw = make_dataset(a.d, "ReferencePET", a.num_train, 0, config, seed=a.train_seed)
        pairs = zip(names[1:], a.test_seeds, strict=True)
        tests = [make_dataset(d, n, 1, a.num_test, config, seed=s) for (d, n), s in pairs]
        plans = plan_and_preprocess([a.d], planner=a.pl, configurations=("3d_fullres",))
        ours_p, base_p = plans["plans_identifier"], plans["baseline_plans_identifier"]
        ids_file.write_text(json.dumps([ours_p, base_p]))
    hours, runs, compares = {}, [], {}
    for seed in a.seeds:
        results = out / f"seed_{seed}" / "nnUNet_results"
        env = dict(os.environ, nnUNet_results=str(results))
        pairs = ((a.tr, ours_p), (a.btr, base_p)) if a.btr != "none" else ((a.tr, ours_p),)
        for trainer, pl in pairs:
            hours[f"{trainer}/seed_{seed}"] = _train(a, a.d, trainer, pl, seed, env)
        ours, base = (
            results / train_raw.name / f"{t}__{pl}__3d_fullres" for t, pl in ((a.tr, ours_p), (a.btr, base_p))
        )
        base = None if a.btr == "none" else base
        for i, raw in enumerate(tests):
            runs.append(evaluate_test_set(a, raw, ours, base, out / f"seed_{seed}" / f"test_{i}"))
        if base is None:
            continue
        cmp_out = out / f"seed_{seed}" / "compare"
        if not (a.reuse and (cmp_out / "compare.json").is_file()):
            cmd = ["seganypet_compare", "-d", str(a.d), "-tr", a.tr, a.btr, "-p", ours_p, base_p, "-f", "0",
                   "-o", str(cmp_out), "-device", a.device]  # fmt: skip
            cmd += ["-targets", *a.targets] if a.targets else []
            subprocess.run(cmd, env=env, check=True)
        compares[f"seed_{seed}"] = json.loads((cmp_out / "compare.json").read_text())["per_structure"]
    targets = report(runs)
    budget = {"epochs": a.epochs, "iterations_per_epoch": a.iters_per_epoch, "val_iterations_per_epoch": a.val_iters,
              "total_iterations": a.epochs * a.iters_per_epoch}  # fmt: skip
    result = {
        "command": sys.argv, "budget": budget, "training_hours": hours, "machine": machine(a.device),
        "generator": {"preset": a.preset, "tracer": a.tracer, "spacing_mm": list(config.grid_spacing),
                      "train_seed": a.train_seed, "test_seeds": a.test_seeds, "num_train": a.num_train,
                      "num_test": a.num_test,
                      "test_cases_evaluated": [len(list((t / "imagesTs").glob("*_0000.nii.gz"))) for t in tests]},
        "plans": [ours_p, base_p], "trainers": [a.tr, a.btr], "seeds": a.seeds, "runs": runs,
        "compare_fold0_validation": compares, "targets": targets,
        "total_hours": (time.perf_counter() - start) / 3600.0,
    }  # fmt: skip
    from seganypet_nnunet.io_utils import write_json

    write_json(result, out / "reference_model.json")
    print(f"\nbudget {budget['total_iterations']} iterations; training hours {hours}; machine {result['machine']}")
    print(f"json: {out / 'reference_model.json'}")


if __name__ == "__main__":
    main()
