"""Where a SegAnyPETTrainer step spends its time: backbone, decoder passes, click simulation, loss + backward.

    python bench/bench_prompt_step_breakdown.py                    # generates + plans a tiny dataset in tmp
    python bench/bench_prompt_step_breakdown.py -d 901 -p SegAnyPETPlansTiny -n 20 -tr SegAnyPETTrainer_decay05

Runs ``-n`` train steps under cProfile and prints the cumulative seconds per step of the parts of the click loop
(``encode``, ``decode``, target sampling, first prompts, correction clicks, ``promptable_loss``, backward + step).
cProfile adds overhead to Python-heavy parts; the fractions, not the absolute times, are the point.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import sys
import tempfile

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
PARTS = {
    "backbone (encode)": ("network.py", "encode"),
    "decoder passes (decode)": ("network.py", "decode"),
    "target sampling (pick_targets)": ("prompt_training.py", "pick_targets"),
    "first prompts (numpy)": ("prompt_training.py", "first_prompts"),
    "correction clicks (numpy)": ("prompt_training.py", "add_correction_clicks"),
    "promptable loss": ("prompt_training.py", "promptable_loss"),
    "nnU-Net loss": ("deep_supervision.py", "forward"),
    "optimizer step (SGDAdamW)": ("optim.py", "step"),
    "gradient clipping": ("clip_grad.py", "clip_grad_norm_"),
    "backward + all-reduce + step": ("SegAnyPETTrainer.py", "_backward_and_step"),
    "whole train_step": ("SegAnyPETTrainer.py", "train_step"),
}


def main() -> None:
    p = argparse.ArgumentParser(description="per-part seconds of a SegAnyPETTrainer step (cProfile)")
    p.add_argument("-d", default=None)
    p.add_argument("-p", default=None)
    p.add_argument("-pl", default="SegAnyPETPlannerTiny")
    p.add_argument("-c", default="3d_fullres")
    p.add_argument("-tr", default="SegAnyPETTrainer")
    p.add_argument("-n", type=int, default=10)
    p.add_argument("-cases", type=int, default=4)
    p.add_argument("-device", default="cpu", choices=("cpu", "cuda"))
    a = p.parse_args()
    sys.path.insert(0, HERE)
    from bench_train_throughput import build, make_dataset, timed_steps

    from seganypet_nnunet.cli_args import make_device
    from seganypet_nnunet.planners import get_planner_pair
    from seganypet_nnunet.trainers.registry import get_trainer_class

    device = make_device(a.device)
    with tempfile.TemporaryDirectory(prefix="bench_breakdown_") as tmp:
        dataset = a.d if a.d is not None else make_dataset(tmp, a.pl, a.cases)
        os.environ["nnUNet_results"] = os.path.join(tmp, "results")
        trainer, loader = build(
            get_trainer_class(a.tr), dataset, a.c, a.p or get_planner_pair(a.pl)[0].default_plans_name, device
        )
        timed_steps(trainer, loader, 2, device)
        prof = cProfile.Profile()
        prof.enable()
        timed_steps(trainer, loader, a.n, device)
        prof.disable()
    stats = pstats.Stats(prof).stats
    print(f"\n{a.tr}, device {a.device}, threads {torch.get_num_threads()}, {a.n} steps: seconds per step")
    total = None
    for label, (file, func) in reversed(PARTS.items()):
        cum = sum(v[3] for (f, _, fn), v in stats.items() if f.endswith(file) and fn == func) / a.n
        total = cum if total is None else total
        print(f"  {label:32s} {cum:7.3f} s  {100 * cum / total:5.1f} %")


if __name__ == "__main__":
    main()
