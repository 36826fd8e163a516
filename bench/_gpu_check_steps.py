"""The steps of bench/gpu_check.py; each runs in its own process (``gpu_check.py --step NAME``) under a timeout.

A step reads the run's settings from ``WORK/config.json``, does its work with the real commands / classes, and
returns a JSON-able dict of figures; any exception (a non-finite loss included) fails the step.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
DATASET_ID = 987
CONFIGURATION = "3d_fullres"
SAM_PLANS = "GpuCheckSamMed3DPlans"


class NonFiniteLoss(RuntimeError):
    pass


def say(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _peak_reset(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()


def _peak_gib(device: torch.device, base: int = 0) -> float | None:
    """Peak allocated GPU memory since the last reset, minus ``base`` bytes (memory held before); None off cuda."""
    return round((torch.cuda.max_memory_allocated() - base) / 2**30, 2) if device.type == "cuda" else None


def _allocated(device: torch.device) -> int:
    return torch.cuda.memory_allocated() if device.type == "cuda" else 0


def _finite(name: str, loss, step: int) -> float:
    value = float(np.asarray(loss))
    if not math.isfinite(value):
        raise NonFiniteLoss(f"{name}: non-finite loss {value} at iteration {step}")
    return value


def _run(cmd: list[str], log: Path) -> float:
    """Runs the installed console script ``cmd[0]`` with this interpreter (``gpu_check.py --measure``), output appended
    to ``log``; returns its wall seconds; raises on a non-zero exit."""
    say("$ " + " ".join(cmd))
    t0 = time.perf_counter()
    with open(log, "a") as f:
        proc = subprocess.run(
            [sys.executable, str(HERE / "gpu_check.py"), "--measure", *cmd], stdout=f, stderr=subprocess.STDOUT
        )
    if proc.returncode:
        tail = log.read_text()[-2000:]
        raise RuntimeError(f"{cmd[0]} exited {proc.returncode}; last output:\n{tail}")
    return time.perf_counter() - t0


def _device(cfg: dict) -> torch.device:
    """``-device`` with nnU-Net's thread settings; cuDNN autotuning on cuda as nnU-Net's launcher sets it."""
    from seganypet_nnunet.cli_args import make_device

    if cfg["device"] == "cuda":
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = False, True
    return make_device(cfg["device"])


def _build(trainer_class: type, plans: str, device: torch.device):
    sys.path.insert(0, str(HERE))
    from bench_train_throughput import build

    return build(trainer_class, str(DATASET_ID), CONFIGURATION, plans, device)


def _train_steps(name: str, trainer, loader, n: int, device: torch.device) -> tuple[list[float], list[float], list]:
    """n train steps: (step seconds, with-data seconds, losses); every loss must be finite."""
    steps, walls, losses = [], [], []
    for i in range(n):
        t0 = time.perf_counter()
        batch = next(loader)
        t1 = time.perf_counter()
        out = trainer.train_step(batch)
        _sync(device)
        t2 = time.perf_counter()
        losses.append(_finite(name, out["loss"], i))
        steps.append(t2 - t1)
        walls.append(t2 - t0)
    return steps, walls, losses


def _snapshot(net: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in net.named_parameters() if p.requires_grad}


def _updated(net: torch.nn.Module, before: dict, prefixes: tuple[str, ...]) -> dict:
    """Changed trainable parameters, per prefix; raises when a part did not change or a weight is not finite."""
    params = dict(net.named_parameters())
    bad = [n for n, p in params.items() if not torch.isfinite(p).all()]
    if bad:
        raise NonFiniteLoss(f"non-finite weights after training: {bad[:3]}")
    changed = {n for n, old in before.items() if not torch.equal(old, params[n].detach())}
    out = {"changed": len(changed), "trainable": len(before)}
    for prefix in prefixes:
        names = [n for n in before if n.startswith(prefix)]
        hit = sum(n in changed for n in names)
        if not hit:
            raise RuntimeError(f"no {prefix}* parameter was updated ({len(names)} trainable)")
        out[prefix.rstrip(".")] = f"{hit}/{len(names)}"
    return out


# ------------------------------------------------------------------------------------------------------- steps
def step_env(cfg: dict, work: Path) -> dict:
    from importlib.metadata import version

    import nnunetv2  # noqa: F401

    info = {
        "torch": torch.__version__,
        "nnunetv2": version("nnunetv2"),
        "seganypet_nnunet": version("seganypet_nnunet"),
        "python": sys.version.split()[0],
        "cpu_count": os.cpu_count(),
        "cuda_available": torch.cuda.is_available(),
        "nnUNet_compile": os.environ.get("nnUNet_compile"),
        "nnUNet_n_proc_DA": os.environ.get("nnUNet_n_proc_DA"),
    }
    if cfg["device"] == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError("-device cuda but torch.cuda.is_available() is False (a CPU build of torch?)")
        props = torch.cuda.get_device_properties(0)
        nccl = torch.cuda.nccl.version() if torch.distributed.is_nccl_available() else None
        info.update(
            gpu=props.name,
            gpu_memory_gib=round(props.total_memory / 2**30, 1),
            capability=f"{props.major}.{props.minor}",
            cuda=torch.version.cuda,
            cudnn=torch.backends.cudnn.version(),
            nccl=".".join(map(str, nccl)) if isinstance(nccl, tuple) else str(nccl),
        )
    return info


def step_data(cfg: dict, work: Path) -> dict:
    cmd = ["seganypet_make_synthetic", "-d", str(DATASET_ID), "-num_train", str(cfg["num_train"]), "-num_test", "1"]
    cmd += ["-corrupt_fraction", "0.5", "-seed", "0"] + (["--small"] if cfg["tiny"] else [])
    seconds = _run(cmd, work / "logs" / "data.log")
    raw = next((Path(os.environ["nnUNet_raw"])).glob(f"Dataset{DATASET_ID}_*"))
    import SimpleITK as sitk

    image = next((raw / "imagesTs").glob("*.nii.gz"))
    return {
        "cases": cfg["num_train"] + 1,
        "test_image_size_ijk": list(sitk.ReadImage(str(image)).GetSize()),
        "command_s": round(seconds, 1),
    }


def step_plan(cfg: dict, work: Path) -> dict:
    cmd = ["seganypet_plan_and_preprocess", "-d", str(DATASET_ID), "-c", CONFIGURATION, "-np", str(cfg["np"])]
    cmd += ["-pl", cfg["planner"]] + (["--no_baseline"] if not cfg["baseline"] else [])
    seconds = _run(cmd, work / "logs" / "plan.log")
    pre = next(Path(os.environ["nnUNet_preprocessed"]).glob(f"Dataset{DATASET_ID}_*"))
    plan = json.loads((pre / f"{cfg['plans']}.json").read_text())["configurations"][CONFIGURATION]
    kw = plan["architecture"]["arch_kwargs"]
    return {
        "plans": cfg["plans"],
        "patch": plan["patch_size"],
        "batch": plan["batch_size"],
        "stages": kw["n_stages"],
        "features": kw["features_per_stage"],
        "command_s": round(seconds, 1),
    }


def step_throughput(cfg: dict, work: Path) -> dict:
    """SegAnyPETTrainer vs nnUNetTrainer on the same plans (and nnUNetTrainer on the baseline plans), interleaved."""
    from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

    from seganypet_nnunet.trainers.SegAnyPETTrainer import SegAnyPETTrainer

    device = _device(cfg)
    runs = {
        "SegAnyPETTrainer": (SegAnyPETTrainer, cfg["plans"]),
        "nnUNetTrainer": (nnUNetTrainer, cfg["plans"]),
    }
    if cfg["baseline"]:
        runs["nnUNetTrainer@baseline"] = (nnUNetTrainer, cfg["baseline_plans"])
    built, peak, losses = {}, {}, {name: [] for name in runs}
    for name, (cls, plans) in runs.items():
        say(f"build {name} ({plans}) + {cfg['warmup']} warm-up iterations")
        base = _allocated(device)  # the trainers built before this one
        _peak_reset(device)
        built[name] = _build(cls, plans, device)
        losses[name] += _train_steps(name, *built[name], cfg["warmup"], device)[2]
        peak[name] = _peak_gib(device, base)
    times = {name: ([], []) for name in runs}
    done, chunk = 0, 5
    while done < cfg["iterations"]:
        k = min(chunk, cfg["iterations"] - done)
        for name, (trainer, loader) in built.items():
            s, w, lo = _train_steps(name, trainer, loader, k, device)
            times[name][0].extend(s)
            times[name][1].extend(w)
            losses[name] += lo
        done += k
        say(f"timed {done}/{cfg['iterations']} iterations per trainer")
    out = {}
    for name in runs:
        step, wall = float(np.median(times[name][0])), float(np.median(times[name][1]))
        out[name] = {
            "plans": runs[name][1],
            "s_per_it_step": round(step, 4),
            "s_per_it": round(wall, 4),
            "it_per_s": round(1 / wall, 3),
            "peak_gib": peak[name],
            "loss_first_last": [round(losses[name][0], 4), round(losses[name][-1], 4)],
        }
    out["ratio_it_per_s"] = round(out["SegAnyPETTrainer"]["it_per_s"] / out["nnUNetTrainer"]["it_per_s"], 3)
    out["iterations"], out["warmup"] = cfg["iterations"], cfg["warmup"]
    return out


def write_sam_plans(cfg: dict) -> str:
    """A plans file naming SamMed3DNet (full ViT-B at 128^3, or the tiny config) on the check's preprocessed data."""
    from seganypet_nnunet.model.sam_med3d.network import SamMed3DConfig, sam_med3d_architecture

    pre = next(Path(os.environ["nnUNet_preprocessed"]).glob(f"Dataset{DATASET_ID}_*"))
    plans = json.loads((pre / f"{cfg['plans']}.json").read_text())
    sam = SamMed3DConfig(**cfg["sam_config"]) if cfg["sam_config"] else SamMed3DConfig()
    c = plans["configurations"][CONFIGURATION]
    c["architecture"], c["patch_size"], c["batch_size"] = sam_med3d_architecture(sam), [sam.img_size] * 3, 2
    plans["plans_name"] = SAM_PLANS
    (pre / f"{SAM_PLANS}.json").write_text(json.dumps(plans, indent=1))
    return SAM_PLANS


def _short_training(name: str, trainer_class: type, plans: str, cfg: dict, n: int, prefixes: tuple[str, ...]):
    device = _device(cfg)
    trainer, loader = _build(trainer_class, plans, device)
    net = trainer._module()
    before = _snapshot(net)
    _peak_reset(device)
    steps, _, losses = _train_steps(name, trainer, loader, n, device)
    result = {
        "iterations": n,
        "losses": [round(v, 4) for v in losses],
        "s_per_it_median": round(float(np.median(steps)), 3),
        "peak_gib": _peak_gib(device),
        "updated": _updated(net, before, prefixes),
        "params_m": round(sum(p.numel() for p in net.parameters()) / 1e6, 1),
    }
    if trainer.grad_scaler is not None:
        result["grad_scale"] = float(trainer.grad_scaler.get_scale())
    return trainer, result


def step_sam_med3d(cfg: dict, work: Path) -> dict:
    from seganypet_nnunet.trainers.SamMed3DTrainer import SamMed3DTrainer

    class SamMed3DTrainer_gpucheck(SamMed3DTrainer):
        num_click_iterations = cfg["sam_clicks"]

    plans = write_sam_plans(cfg)
    _, result = _short_training(
        "SamMed3DTrainer",
        SamMed3DTrainer_gpucheck,
        plans,
        cfg,
        cfg["sam_iterations"],
        ("image_encoder.", "prompt_encoder.", "mask_decoder."),
    )
    result["click_iterations"] = cfg["sam_clicks"]
    result["config"] = "tiny (tests' SamMed3DConfig)" if cfg["sam_config"] else "vit_b_ori 128^3 (random init)"
    return result


def step_cpcl(cfg: dict, work: Path) -> dict:
    from seganypet_nnunet.trainers.cpcl import SegAnyPETTrainerCPCL

    device = _device(cfg)
    trainer, loader = _build(SegAnyPETTrainerCPCL, cfg["plans"], device)
    # every training case counts as low quality, so each step runs the CPCL path (the split may hold no corrupted one)
    trainer.low_quality_ids = frozenset(trainer.dataset_class.get_identifiers(trainer.preprocessed_dataset_folder))
    net = trainer._module()
    before = _snapshot(net)
    _peak_reset(device)
    losses, cpcl_steps, steps = [], 0, []
    for i in range(cfg["cpcl_iterations"]):
        t0 = time.perf_counter()
        out = trainer.train_step(next(loader))
        _sync(device)
        steps.append(time.perf_counter() - t0)
        losses.append(_finite("SegAnyPETTrainerCPCL", out["loss"], i))
        cpcl_steps += trainer.last_cpcl is not None
    if not cpcl_steps:
        raise RuntimeError(f"the CPCL path never ran in {len(losses)} iterations (no low-quality case drawn)")
    return {
        "iterations": len(losses),
        "cpcl_iterations": cpcl_steps,
        "losses": [round(v, 4) for v in losses],
        "s_per_it_median": round(float(np.median(steps)), 3),
        "peak_gib": _peak_gib(device),
        "low_quality_cases_forced": len(trainer.low_quality_ids),
        "updated": _updated(net, before, ("image_encoder.", "prompt_encoder.", "mask_decoder.")),
    }
