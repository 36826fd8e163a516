"""Data-parallel scaling: samples/s of N torchrun ranks vs one process, same global batch, same plans and trainer.

CPU (this machine):      2 gloo ranks x 1 thread  vs  1 rank x 2 threads
GPU (when lent):         N nccl ranks x 1 GPU     vs  1 GPU

    python bench/bench_ddp_scaling.py                                   # generates + plans a tiny dataset in tmp
    python bench/bench_ddp_scaling.py -d 901 -p SegAnyPETPlansTiny -n 10 -ranks 2 -rounds 2
    python bench/bench_ddp_scaling.py -device cuda -ranks 4 -pl SegAnyPETPlanner -n 20

The two set-ups run alternately (``-rounds`` times each) so that load on a shared machine hits both alike. Each run
builds the trainer as ``seganypet_train`` does (``run.distributed`` under torchrun), runs ``-warmup`` untimed and ``-n``
timed ``train_step`` calls on nnU-Net's own loaders (per-rank batch = the global batch split by nnU-Net), with a
barrier before the clock stops; rank 0 reports global samples/s. Prints the median per set-up and the speed-up.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))


def worker(a: argparse.Namespace) -> None:
    """One process of one run (a torchrun rank, or the single process); rank 0 prints one JSON line."""
    import torch.distributed as dist

    sys.path.insert(0, HERE)
    from bench_train_throughput import timed_steps

    from seganypet_nnunet.run import distributed
    from seganypet_nnunet.run.train import build_trainer
    from seganypet_nnunet.trainers.distributed import ddp_capable
    from seganypet_nnunet.trainers.registry import get_trainer_class

    device = torch.device(a.device)
    if distributed.launched_by_torchrun():
        device = distributed.init_process_group(device, distributed.RankInfo.from_env())
    else:
        torch.set_num_threads(a.threads)
    trainer = build_trainer(ddp_capable(get_trainer_class(a.tr)), a.d, a.c, 0, a.p, device=device)
    trainer.initialize()
    trainer.network.train()
    loader, _ = trainer.get_dataloaders()
    timed_steps(trainer, loader, a.warmup, device)
    world = dist.get_world_size() if dist.is_initialized() else 1
    if dist.is_initialized():
        dist.barrier()
    t0 = time.perf_counter()
    timed_steps(trainer, loader, a.n, device)
    if dist.is_initialized():
        dist.barrier()
    seconds = time.perf_counter() - t0
    global_batch = trainer.configuration_manager.batch_size
    if not dist.is_initialized() or dist.get_rank() == 0:
        result = {"world": world, "threads": torch.get_num_threads(), "samples_per_s": a.n * global_batch / seconds}
        print("RESULT " + json.dumps(result), flush=True)
    if dist.is_initialized():
        dist.destroy_process_group()


def launch(a: argparse.Namespace, ranks: int, threads: int) -> dict:
    """Runs one set-up in subprocesses; returns rank 0's result."""
    args = [os.path.abspath(__file__), "--worker", "-d", a.d, "-p", a.p, "-c", a.c, "-tr", a.tr, "-device", a.device]
    args += ["-n", str(a.n), "-warmup", str(a.warmup), "-threads", str(threads)]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "nnUNet_n_proc_DA": os.environ.get("nnUNet_n_proc_DA", "0")}
    if ranks > 1:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={ranks}", *args]
    else:
        cmd = [sys.executable, *args]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{(proc.stdout + proc.stderr)[-3000:]}")
    return json.loads(lines[-1][len("RESULT ") :])


def main() -> None:
    p = argparse.ArgumentParser(description="samples/s of N DDP ranks vs 1 process, same global batch")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("-d", default=None, help="planned dataset id; omitted: generate one in a tmp dir")
    p.add_argument("-p", default=None, help="plans identifier (default: the planner's plans)")
    p.add_argument("-pl", default="SegAnyPETPlannerTiny", help="planner preset for a generated dataset")
    p.add_argument("-c", default="3d_fullres")
    p.add_argument("-tr", default="SegAnyPETTrainer", help="trainer (registry name)")
    p.add_argument("-device", default="cpu", choices=("cpu", "cuda"))
    p.add_argument("-ranks", type=int, default=2, help="DDP ranks of the parallel set-up")
    p.add_argument("-threads", type=int, default=None, help="CPU threads of the single process (default: -ranks)")
    p.add_argument("-n", type=int, default=10, help="timed iterations per run")
    p.add_argument("-warmup", type=int, default=2)
    p.add_argument("-rounds", type=int, default=2, help="alternations of the two set-ups")
    p.add_argument("-cases", type=int, default=6, help="cases of a generated dataset")
    a = p.parse_args()
    if a.worker:
        worker(a)
        return
    sys.path.insert(0, HERE)
    from bench_train_throughput import make_dataset

    from seganypet_nnunet.planners import get_planner_pair

    a.p = a.p or get_planner_pair(a.pl)[0].default_plans_name
    single_threads = a.threads or (a.ranks if a.device == "cpu" else 1)
    with tempfile.TemporaryDirectory(prefix="bench_ddp_") as tmp:
        if a.d is None:
            a.d = make_dataset(tmp, a.pl, a.cases)
        os.environ["nnUNet_results"] = os.path.join(tmp, "results")
        runs: dict[str, list[float]] = {"parallel": [], "single": []}
        for _ in range(a.rounds):
            runs["parallel"].append(launch(a, a.ranks, 1)["samples_per_s"])
            runs["single"].append(launch(a, 1, single_threads)["samples_per_s"])
    par, one = statistics.median(runs["parallel"]), statistics.median(runs["single"])
    unit = "thread" if a.device == "cpu" else "GPU"
    print(f"\n{a.tr}, plans {a.p} / {a.c}, device {a.device}, {a.n} timed iterations x {a.rounds} rounds")
    print(f"  {a.ranks} ranks x 1 {unit}: {par:.2f} samples/s   runs {[round(x, 2) for x in runs['parallel']]}")
    print(f"  1 rank x {single_threads} {unit}(s): {one:.2f} samples/s   runs {[round(x, 2) for x in runs['single']]}")
    print(f"  speed-up of DDP: {par / one:.2f}x")


if __name__ == "__main__":
    main()
