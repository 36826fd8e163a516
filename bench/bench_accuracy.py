"""Accuracy at equal training budget on synthetic whole-body PET: SegAnyPET vs the nnU-Net baseline.

Runs the demo pipeline (``seganypet_nnunet.demo.run_demo``: generate → plan both from one fingerprint → train ours and
the baseline with the SAME budget → predict → simulated clicks) with the trainer pair you choose, and prints automatic
Dice (ours vs nnU-Net, and the ratio), prompted Dice after 1/3/5 clicks, and the held-out (never prompted in training)
structures separately. State the budget when you report the numbers: it is the trainers' ``budget``.

    python bench/bench_accuracy.py                                   # CPU demo budget (SegAnyPETTrainer_demo)
    python bench/bench_accuracy.py -tr SegAnyPETTrainer_heldout_spleen -btr nnUNetTrainer_seganypet -device cuda
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def _mean(rows: list[dict], key: str, names: set[str] | None = None) -> float:
    values = [r[key] for r in rows if r[key] is not None and (names is None or r["structure"] in names)]
    return float(np.mean(values)) if values else float("nan")


def main() -> None:
    from seganypet_nnunet.demo import CLICKS, DemoSettings, run_demo
    from seganypet_nnunet.trainers.registry import get_trainer_class

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-o", default="/tmp/seganypet_bench_accuracy", help="[OPTIONAL] work folder")
    p.add_argument("-tr", default="SegAnyPETTrainer_demo", help="[OPTIONAL] our trainer (registry name)")
    p.add_argument("-btr", default="nnUNetTrainer_seganypet_demo", help="[OPTIONAL] baseline, same budget")
    p.add_argument("-num_train", type=int, default=10, help="[OPTIONAL] training cases")
    p.add_argument("-num_test", type=int, default=3, help="[OPTIONAL] test cases")
    p.add_argument("-device", default="cpu", help="[OPTIONAL] cpu or cuda")
    a = p.parse_args()
    ours, base = get_trainer_class(a.tr), get_trainer_class(a.btr)
    if ours.budget != base.budget:
        raise SystemExit(f"unequal budgets: {a.tr} {ours.budget} vs {a.btr} {base.budget}")
    result = run_demo(
        DemoSettings(
            Path(a.o), num_train=a.num_train, num_test=a.num_test, device=a.device, trainer=a.tr, baseline_trainer=a.btr
        )
    )
    rows, unseen = result["table"], set(result["unseen"])
    seen = {r["structure"] for r in rows} - unseen
    auto, baseline = _mean(rows, "automatic"), _mean(rows, "baseline")
    print(f"\nbudget (both trainers): {ours.budget or 'nnUNetTrainer defaults'}; device {a.device}")
    print(
        f"automatic Dice, mean over structures: ours {auto:.3f} | nnU-Net {baseline:.3f} | ratio {auto / baseline:.2f}"
    )
    for k in CLICKS:
        print(
            f"prompted Dice after {k} click(s): seen {_mean(rows, f'dice_click_{k}', seen):.3f}"
            + (f" | held-out {_mean(rows, f'dice_click_{k}', unseen):.3f}" if unseen else "")
        )


if __name__ == "__main__":
    main()
