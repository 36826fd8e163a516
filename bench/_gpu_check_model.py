"""bench/gpu_check.py's steps around the torchrun model: torchrun + seganypet_train, the two predictors, the session.

Helpers and the training steps are in ``_gpu_check_steps.py``.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
from _gpu_check_steps import CONFIGURATION, DATASET_ID, _device, _finite, _peak_gib, _peak_reset, _run, _sync


def model_trainer(cfg: dict) -> str:
    """The torchrun step's trainer: 2 epochs x 3 iterations + the final validation (tiny: without mirroring)."""
    return "SegAnyPETTrainer_tiny_noMirroring" if cfg["tiny"] else "SegAnyPETTrainer_tiny"


def _model_folder(cfg: dict) -> Path:
    results = next(Path(os.environ["nnUNet_results"]).glob(f"Dataset{DATASET_ID}_*"))
    return results / f"{model_trainer(cfg)}__{cfg['plans']}__{CONFIGURATION}"


def step_torchrun(cfg: dict, work: Path) -> dict:
    """``torchrun`` one rank of ``seganypet_train`` (nccl on cuda, gloo on cpu); its model serves predict/session."""
    if cfg["device"] == "cuda":
        os.environ["NCCL_DEBUG"] = "VERSION"  # NCCL prints its version when a communicator starts: proof nccl ran
    cmd = ["torchrun", "--standalone", "--nproc_per_node=1", "-m", "seganypet_nnunet.run.train", str(DATASET_ID)]
    cmd += [CONFIGURATION, "0", "-tr", model_trainer(cfg), "-p", cfg["plans"], "-device", cfg["device"]]
    seconds = _run(cmd, work / "logs" / "torchrun.log")
    fold = _model_folder(cfg) / "fold_0"
    from seganypet_nnunet.checkpoint_io import load_checkpoint

    ckpt = load_checkpoint(fold / "checkpoint_final.pth")
    train_losses = [float(v) for v in ckpt["logging"]["train_losses"]]
    for i, v in enumerate(train_losses):
        _finite("torchrun epoch train loss", v, i)
    logs = "".join(p.read_text() for p in fold.glob("training_log_*.txt"))
    ddp_line = next((ln.split(": ", 1)[-1] for ln in logs.splitlines() if "DDP: rank" in ln), None)
    if ddp_line is None:
        raise RuntimeError(f"{fold}: no 'DDP: rank' line in the training log (did torchrun's rank path run?)")
    summary = json.loads((fold / "validation" / "summary.json").read_text())
    nccl = [ln.strip() for ln in (work / "logs" / "torchrun.log").read_text().splitlines() if "NCCL version" in ln]
    if cfg["device"] == "cuda" and not nccl:
        raise RuntimeError("torchrun on cuda: NCCL never reported its version (no nccl communicator started)")
    return {
        "backend": nccl[0][nccl[0].index("NCCL") :] if nccl else "gloo",
        "rank_device": ddp_line,
        "epoch_train_losses": [round(v, 4) for v in train_losses],
        "val_mean_dice": round(float(summary["foreground_mean"]["Dice"]), 4),
        "command_s": round(seconds, 1),
    }


def _measured(cmd: list[str], log: Path) -> tuple[float, dict]:
    """A console script run in a fresh ``gpu_check.py --measure`` process: (wall s, its peak GPU / RSS figures)."""
    seconds = _run(cmd, log)
    lines = [ln for ln in log.read_text().splitlines() if ln.startswith("MEASURED ")]
    return seconds, json.loads(lines[-1][len("MEASURED ") :])


def step_predict(cfg: dict, work: Path) -> dict:
    """seganypet_predict (automatic) vs nnUNetv2_predict on the torchrun model and the test case."""
    import SimpleITK as sitk

    raw = next(Path(os.environ["nnUNet_raw"]).glob(f"Dataset{DATASET_ID}_*"))
    common = ["-i", str(raw / "imagesTs"), "-d", str(DATASET_ID), "-c", CONFIGURATION, "-p", cfg["plans"]]
    common += ["-tr", model_trainer(cfg), "-f", "0", "-device", cfg["device"], "-npp", "1", "-nps", "1"]
    out, result = {}, {}
    for name in ("nnUNetv2_predict", "seganypet_predict"):
        folder = work / "predictions" / name
        seconds, peak = _measured([name, "-o", str(folder), *common], work / "logs" / f"{name}.log")
        out[name] = sitk.GetArrayFromImage(sitk.ReadImage(str(next(folder.glob("*.nii.gz")))))
        result[name] = {"wall_s": round(seconds, 1), **peak}
    a, b = out["nnUNetv2_predict"], out["seganypet_predict"]
    result["voxel_agreement"] = round(float((a == b).mean()), 6) if a.shape == b.shape else 0.0
    result["ratio_time"] = round(result["seganypet_predict"]["wall_s"] / result["nnUNetv2_predict"]["wall_s"], 3)
    if result["voxel_agreement"] < 0.99:  # same predictor and weights: only near-tie voxels may differ on a GPU
        raise RuntimeError(f"seganypet_predict and nnUNetv2_predict disagree: agreement {result['voxel_agreement']}")
    return result


def step_session(cfg: dict, work: Path) -> dict:
    """First click and a correction click of a SegAnyPETSession on the whole-body test case."""
    import SimpleITK as sitk

    from seganypet_nnunet.inference.session import SegAnyPETSession

    device = _device(cfg)
    raw = next(Path(os.environ["nnUNet_raw"]).glob(f"Dataset{DATASET_ID}_*"))
    image = next((raw / "imagesTs").glob("*.nii.gz"))
    label = sitk.GetArrayFromImage(sitk.ReadImage(str(raw / "labelsTs" / image.name.replace("_0000", ""))))
    liver = json.loads((raw / "dataset.json").read_text())["labels"]["liver"]
    target = label == liver
    zyx = np.argwhere(target)
    seed = zyx[np.argmin(((zyx - zyx.mean(0)) ** 2).sum(1))]  # the liver voxel nearest its centroid
    t0 = time.perf_counter()
    session = SegAnyPETSession.from_model_folder(_model_folder(cfg), folds=(0,), device=device)
    session.set_image(str(image))
    _sync(device)
    t_load = time.perf_counter() - t0
    _peak_reset(device)
    t0 = time.perf_counter()
    mask = session.add_point([int(v) for v in seed[::-1]], positive=True, space="voxel")
    _sync(device)
    t_first = time.perf_counter() - t0
    fn, fp = np.argwhere(target & (mask == 0)), np.argwhere(~target & (mask > 0))
    positive = len(fn) >= len(fp)
    errors = fn if positive else fp
    click = errors[len(errors) // 2] if len(errors) else seed
    t0 = time.perf_counter()
    mask2 = session.add_point([int(v) for v in click[::-1]], positive=positive, space="voxel")
    _sync(device)
    t_corr = time.perf_counter() - t0
    if mask.shape != label.shape or mask2.shape != label.shape:
        raise RuntimeError(f"session mask shape {mask.shape} != image shape {label.shape}")

    def dice(m):
        inter = float((target & (m > 0)).sum())
        return round(2 * inter / max(1.0, float(target.sum() + (m > 0).sum())), 4)

    return {
        "image_zyx": list(label.shape),
        "load_and_set_image_s": round(t_load, 2),
        "first_click_s": round(t_first, 3),
        "correction_click_s": round(t_corr, 3),
        "correction": "positive" if positive else "negative",
        "liver_dice_first_second": [dice(mask), dice(mask2)],
        "peak_gib": _peak_gib(device),
    }
