"""Training throughput: SegAnyPETTrainer vs stock nnUNetTrainer on the same plans, backbone and preprocessed data.

Both trainers are built from the same plans file (``SegAnyPETPlans*``: nnUNetTrainer then trains the same
SegAnyPETNet through ``forward(x)`` only, i.e. the identical backbone without the prompt head), use nnU-Net's own data
loaders, and are timed in interleaved chunks after a warm-up so that load on a shared machine hits both alike.

    python bench/bench_train_throughput.py -d 901 -p SegAnyPETPlansTiny -n 20 -device cpu
    python bench/bench_train_throughput.py -pl SegAnyPETPlannerSmall -n 10       # generates + plans a dataset in tmp
    python bench/bench_train_throughput.py -variants SegAnyPETTrainer SegAnyPETTrainer_decay05 \
        SegAnyPETTrainer_overlap SegAnyPETTrainer_decay05_overlap SegAnyPETTrainer_2rounds    # prompt-cost ablation

Prints s/iteration (train_step alone, and with the data loader) and, per variant, the ratio of iterations/s to
nnUNetTrainer measured in the same interleaved run (target >= 0.9). Variants are registry names
(``seganypet_nnunet.trainers.registry``; the cheaper prompt paths are in ``trainers/prompt_cost.py``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import tempfile
import time

import torch

from seganypet_nnunet.cli_args import DEVICES

PLANNERS = ("SegAnyPETPlannerTiny", "SegAnyPETPlannerSmall", "SegAnyPETPlanner")
BENCH_DATASET_ID = 987


def make_dataset(workdir: str, planner: str, cases: int) -> str:
    """Synthetic 64^3 dataset + planning in ``workdir`` (sets nnUNet_* for this process); returns the id."""
    for var in ("raw", "preprocessed", "results"):
        os.environ[f"nnUNet_{var}"] = os.path.join(workdir, var)
        os.makedirs(os.environ[f"nnUNet_{var}"], exist_ok=True)
    subprocess.run(
        [
            "seganypet_make_synthetic",
            "-d",
            str(BENCH_DATASET_ID),
            "-num_train",
            str(cases),
            "-num_test",
            "0",
            "--small",
        ],
        check=True,
    )
    subprocess.run(
        [
            "seganypet_plan_and_preprocess",
            "-d",
            str(BENCH_DATASET_ID),
            "-pl",
            planner,
            "-c",
            "3d_fullres",
            "-np",
            "1",
            "--no_baseline",
        ],
        check=True,
    )
    return str(BENCH_DATASET_ID)


def build(trainer_class: type, dataset: str, configuration: str, plans: str, device: torch.device):
    """Initialised trainer + its training data loader (nnU-Net's own)."""
    from seganypet_nnunet.run.train import build_trainer

    trainer = build_trainer(trainer_class, dataset, configuration, 0, plans, device=device)
    trainer.initialize()
    trainer.network.train()
    loader, _ = trainer.get_dataloaders()
    return trainer, loader


def timed_steps(trainer, loader, n: int, device: torch.device) -> tuple[list[float], list[float]]:
    """n train steps; returns (step seconds, step + data-loading seconds)."""
    steps, walls = [], []
    for _ in range(n):
        t0 = time.perf_counter()
        batch = next(loader)
        t1 = time.perf_counter()
        trainer.train_step(batch)
        if device.type == "cuda":
            torch.cuda.synchronize()
        t2 = time.perf_counter()
        steps.append(t2 - t1)
        walls.append(t2 - t0)
    return steps, walls


def run(
    dataset: str,
    plans: str,
    configuration: str,
    iterations: int,
    warmup: int,
    chunk: int,
    device: torch.device,
    variants: tuple[str, ...] = ("SegAnyPETTrainer",),
) -> dict[str, tuple[float, float]]:
    """Median s/iteration (step, wall) per trainer name (nnUNetTrainer + ``variants``), interleaved in chunks."""
    from seganypet_nnunet.trainers.registry import get_trainer_class

    names = ("nnUNetTrainer", *[v for v in variants if v != "nnUNetTrainer"])
    runs = {name: build(get_trainer_class(name), dataset, configuration, plans, device) for name in names}
    times: dict[str, tuple[list[float], list[float]]] = {name: ([], []) for name in runs}
    for trainer, loader in runs.values():
        timed_steps(trainer, loader, warmup, device)
    done = 0
    while done < iterations:
        k = min(chunk, iterations - done)
        for name, (trainer, loader) in runs.items():
            steps, walls = timed_steps(trainer, loader, k, device)
            times[name][0].extend(steps)
            times[name][1].extend(walls)
        done += k
    return {name: (statistics.median(s), statistics.median(w)) for name, (s, w) in times.items()}


def main() -> None:
    p = argparse.ArgumentParser(description="s/iteration of SegAnyPETTrainer vs nnUNetTrainer on the same plans.")
    p.add_argument("-d", default=None, help="dataset id/name already planned; omitted: generate one in a tmp dir")
    p.add_argument("-p", default=None, help="plans identifier (default: the planner's plans)")
    p.add_argument(
        "-pl",
        default="SegAnyPETPlannerTiny",
        choices=sorted(PLANNERS),
        help="planner preset used to plan a generated dataset (and to choose -p)",
    )
    p.add_argument("-c", default="3d_fullres", help="configuration")
    p.add_argument("-n", type=int, default=20, help="timed iterations per trainer")
    p.add_argument("-warmup", type=int, default=3, help="untimed iterations per trainer")
    p.add_argument("-chunk", type=int, default=5, help="iterations per interleaved chunk")
    p.add_argument("-cases", type=int, default=6, help="cases of a generated dataset")
    p.add_argument("-device", default="cpu", choices=DEVICES)
    p.add_argument("-variants", nargs="+", default=["SegAnyPETTrainer"], help="trainers compared to nnUNetTrainer")
    a = p.parse_args()
    from seganypet_nnunet.cli_args import make_device
    from seganypet_nnunet.planners import get_planner_pair

    device = make_device(a.device)
    plans = a.p or get_planner_pair(a.pl)[0].default_plans_name
    with tempfile.TemporaryDirectory(prefix="bench_train_") as tmp:
        dataset = a.d if a.d is not None else make_dataset(tmp, a.pl, a.cases)
        os.environ["nnUNet_results"] = os.path.join(tmp, "results")  # throw-away output folders and logs
        result = run(dataset, plans, a.c, a.n, a.warmup, a.chunk, device, tuple(a.variants))
    print(f"\nplans {plans} / {a.c}, device {a.device}, torch threads {torch.get_num_threads()}, {a.n} iterations")
    base = result["nnUNetTrainer"][1]
    print(f"  {'trainer':34s} {'train_step':>10s} {'with data':>10s} {'it/s ratio vs nnU-Net':>22s}")
    for name, (step, wall) in result.items():
        print(f"  {name:34s} {step:8.3f} s {wall:8.3f} s {base / wall:22.2f}")
    print("  (ratio = nnUNetTrainer s/it / variant s/it, with data loading; target >= 0.9)")


if __name__ == "__main__":
    main()
