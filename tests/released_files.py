"""Checkpoint files written the way SAM-Med3D's / SegAnyPET's training scripts write them (``train.py::
save_checkpoint``), with the numpy installed here: the test side of ``checkpoint_io``'s allowlist."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch


def upstream_training_checkpoint(dst: Path, state_dict: dict[str, torch.Tensor], module_prefix: bool = False) -> Path:
    """``torch.save`` of upstream's training-checkpoint dict: a real AdamW (two lr groups) and MultiStepLR state of
    a few tensors, losses/dices as numpy scalars, ``args`` an ``argparse.Namespace``, ``used_datas`` a list."""
    params = [torch.nn.Parameter(torch.randn(4, 3)), torch.nn.Parameter(torch.randn(4))]
    optimizer = torch.optim.AdamW(
        [{"params": params[:1], "lr": 8e-5}, {"params": params[1:], "lr": 8e-6}], betas=(0.9, 0.999), weight_decay=0.1
    )
    (params[0].sum() * 2 + params[1].sum()).backward()
    optimizer.step()
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=[120, 180], gamma=0.1)
    scheduler.step()
    args = argparse.Namespace(
        task_name="union_train_turbo_lqonly_uncrec", model_type="vit_b_ori", checkpoint="ckpt/sam_med3d.pth",
        device="cuda", work_dir="work_dir", num_workers=24, gpu_ids=[0, 1], multi_gpu=True, resume=False,
        lr_scheduler="multisteplr", step_size=[120, 180], gamma=0.1, num_epochs=200, img_size=128, batch_size=12,
        accumulation_steps=20, lr=8e-4, weight_decay=0.1, port=12361,
    )  # fmt: skip
    sd = {f"module.{k}" if module_prefix else k: v for k, v in state_dict.items()}
    checkpoint = {
        "epoch": 199,
        "model_state_dict": sd,
        "optimizer_state_dict": optimizer.state_dict(),
        "lr_scheduler_state_dict": scheduler.state_dict(),
        "losses": [np.float64(0.41), np.float32(0.38), np.float64(0.37)],
        "dices": [np.float64(0.71), np.float32(0.74)],
        "best_loss": np.float64(0.37),
        "best_dice": np.float32(0.74),
        "args": args,
        "used_datas": ["data/medical_preprocessed/liver/ct_AbdomenCT1K", "data/pet/autopet"],
    }
    torch.save(checkpoint, dst)
    return dst
