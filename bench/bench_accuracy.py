"""Accuracy at equal training budget on synthetic whole-body PET: SegAnyPET vs the nnU-Net baseline.

Runs the demo pipeline (``seganypet_nnunet.demo.run_demo``: generate → plan both from one fingerprint → train ours and
the baseline with the SAME budget → predict → simulated clicks) with the trainer pair you choose, and prints automatic
Dice (ours vs nnU-Net, and the ratio), prompted Dice after 1/3/5 clicks, and the held-out (never prompted in training)
structures separately; with several ``-seeds`` both models are trained once per seed (torch, numpy and random seeded
before each run, the dataset the demo's) and every figure is mean ± sd over seeds. State the budget when you report
the numbers: it is the trainers' ``budget``. Run it alone (2 cores: about 23 min per seed at the demo budget).

    python bench/bench_accuracy.py -seeds 0 1 2                      # CPU demo budget (SegAnyPETTrainer_demo)
    python bench/bench_accuracy.py -tr SegAnyPETTrainer_heldout_spleen -btr nnUNetTrainer_seganypet -device cuda
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def _mean(rows: list[dict], key: str, names: set[str] | None = None) -> float:
    values = [r[key] for r in rows if r[key] is not None and (names is None or r["structure"] in names)]
    return float(np.mean(values)) if values else float("nan")


def _table(per_seed: list[list[dict]], key: str) -> dict[str, list[float]]:
    """structure -> the values of ``key`` over seeds (structures without a value in some seed are left out)."""
    out: dict[str, list[float]] = {}
    for rows in per_seed:
        for r in rows:
            if r.get(key) is not None:
                out.setdefault(r["structure"], []).append(float(r[key]))
    return {k: v for k, v in out.items() if len(v) == len(per_seed)}


def _ms(values: list[float]) -> str:
    return f"{np.mean(values):.3f}±{np.std(values, ddof=1) if len(values) > 1 else 0.0:.3f}"


def main() -> None:
    import random

    import torch

    from seganypet_nnunet.demo import CLICKS, DemoSettings, run_demo
    from seganypet_nnunet.trainers.registry import get_trainer_class

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-o", default="/tmp/seganypet_bench_accuracy", help="[OPTIONAL] work folder")
    p.add_argument("-tr", default="SegAnyPETTrainer_demo", help="[OPTIONAL] our trainer (registry name)")
    p.add_argument("-btr", default="nnUNetTrainer_seganypet_demo", help="[OPTIONAL] baseline, same budget")
    p.add_argument("-num_train", type=int, default=10, help="[OPTIONAL] training cases")
    p.add_argument("-num_test", type=int, default=3, help="[OPTIONAL] test cases")
    p.add_argument("-device", default="cpu", help="[OPTIONAL] cpu or cuda")
    p.add_argument(
        "-seeds",
        type=int,
        nargs="+",
        default=[0],
        help="[OPTIONAL] training seeds (torch, numpy, random); the "
        "dataset is the demo's (generator seed 0) for every seed. Default: 0",
    )
    a = p.parse_args()
    ours, base = get_trainer_class(a.tr), get_trainer_class(a.btr)
    if ours.budget != base.budget:
        raise SystemExit(f"unequal budgets: {a.tr} {ours.budget} vs {a.btr} {base.budget}")
    per_seed, unseen = [], set()
    for seed in a.seeds:
        torch.manual_seed(seed)
        np.random.seed(seed)
        random.seed(seed)
        settings = DemoSettings(
            Path(a.o) / f"seed_{seed}", num_train=a.num_train, num_test=a.num_test, device=a.device, trainer=a.tr,
            baseline_trainer=a.btr,
        )  # fmt: skip
        result = run_demo(settings)
        per_seed.append(result["table"])
        unseen = set(result["unseen"])
    auto, baseline = _table(per_seed, "automatic"), _table(per_seed, "baseline")
    print(f"\nbudget (both trainers): {ours.budget or 'nnUNetTrainer defaults'}; device {a.device}; seeds {a.seeds}")
    print("automatic Dice per structure, mean ± sd over training seeds:")
    print(f"{'structure':>14s} | {'nnU-Net':>12s} | {'ours':>12s}")
    for name in sorted(set(auto) & set(baseline)):
        print(f"{name + (' *' if name in unseen else ''):>14s} | {_ms(baseline[name]):>12s} | {_ms(auto[name]):>12s}")
    ours_means = [_mean(rows, "automatic") for rows in per_seed]
    base_means = [_mean(rows, "baseline") for rows in per_seed]
    ratios = [o / b for o, b in zip(ours_means, base_means, strict=True) if b > 0]
    print(
        f"automatic Dice, mean over structures: ours {_ms(ours_means)} | nnU-Net {_ms(base_means)} | "
        f"ratio {_ms(ratios) if ratios else 'n/a'} (per seed: "
        + ", ".join(f"{o:.3f}/{b:.3f}" for o, b in zip(ours_means, base_means, strict=True))
        + ")"
    )
    seen = {r["structure"] for r in per_seed[0]} - unseen
    for k in CLICKS:
        s_vals = [_mean(rows, f"dice_click_{k}", seen) for rows in per_seed]
        u_vals = [_mean(rows, f"dice_click_{k}", unseen) for rows in per_seed] if unseen else []
        held = f" | held-out {_ms(u_vals)}" if u_vals else ""
        print(f"prompted Dice after {k} click(s): seen {_ms(s_vals)}{held}")


if __name__ == "__main__":
    main()
