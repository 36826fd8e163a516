"""SamMed3DTrainer: fine-tuning a released-format checkpoint at 128^3 on nnU-Net's real loaders, then ``--c``."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from seganypet_nnunet.checkpoint_io import load_checkpoint
from seganypet_nnunet.run.train import _run, build_trainer
from seganypet_nnunet.synthetic.dataset import make_dataset
from seganypet_nnunet.trainers.SamMed3DTrainer import (
    SamMed3DTrainer,
    SamMed3DTrainer_tiny,
    error_region_clicks,
)

DATASET_ID = 907
PLANS = "SamMed3DPlansB1"
CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def sam_env(tmp_path_factory):
    """Synthetic dataset planned + preprocessed with SamMed3DPlannerBatch1, and a released-format checkpoint."""
    from seganypet_nnunet.model.sam_med3d import SamMed3DNet

    root = tmp_path_factory.mktemp("sam_trainer_env")
    env = {f"nnUNet_{k}": str(root / k) for k in ("raw", "preprocessed", "results")}
    with pytest.MonkeyPatch.context() as mp:
        for key, value in {**env, "nnUNet_def_n_proc": "1", "nnUNet_n_proc_DA": "1"}.items():
            mp.setenv(key, value)
        make_dataset(DATASET_ID, num_train=3, num_test=0)
        cmd = [sys.executable, "-m", "seganypet_nnunet.run.plan_and_preprocess", "-d", str(DATASET_ID)]
        cmd += ["-pl", "SamMed3DPlannerBatch1", "-c", "3d_fullres", "-np", "1", "--no_baseline"]
        subprocess.run(cmd, check=True, env=dict(os.environ), capture_output=True)
        mp.setenv("nnUNet_n_proc_DA", "0")
        torch.manual_seed(0)
        released = root / "seganypet_released.pth"
        torch.save({"model_state_dict": SamMed3DNet().state_dict(), "epoch": 3}, released)
        yield root, released


def test_error_region_clicks_follow_sam_med3d():
    rng = np.random.default_rng(0)
    target = np.zeros((3, 6, 6, 6), bool)
    target[:, 1:3, 1:3, 1:3] = True
    pred = np.zeros_like(target)
    pred[1] = target[1]
    pred[1, 5, 5, 5] = True  # one false positive, no false negative
    pts, labels = error_region_clicks(pred, target, np.array([True, True, False]), rng)
    assert labels[0, 0] == 1 and target[0][tuple(pts[0, 0].astype(int))]  # first click: inside the target
    assert labels[1, 0] == 0 and tuple(pts[1, 0].astype(int)) == (5, 5, 5)  # the only error voxel, negative
    assert labels[2, 0] == -1  # no target: padding


def test_two_learning_rate_groups_and_frozen_encoder(sam_env):
    trainer = build_trainer(SamMed3DTrainer, str(DATASET_ID), "3d_fullres", 0, PLANS, device=CPU)
    trainer.initialize()
    groups = trainer.optimizer.param_groups
    n_encoder = sum(p.numel() for p in trainer.network.image_encoder.parameters())
    assert [sum(p.numel() for p in g["params"]) for g in groups] == [n_encoder, 100_509_232 - n_encoder]
    assert [g["lr"] for g in groups] == pytest.approx([8e-5, 8e-6])
    assert groups[0]["weight_decay"] == 0.1 and trainer.enable_deep_supervision is False
    frozen = build_trainer(SamMed3DTrainer_tiny, str(DATASET_ID), "3d_fullres", 0, PLANS, device=CPU)
    frozen.initialize()
    assert len(frozen.optimizer.param_groups) == 1
    assert not any(p.requires_grad for p in frozen.network.image_encoder.parameters())


@pytest.mark.slow
def test_finetune_from_released_checkpoint_then_resume(sam_env):
    root, released = sam_env
    trainer = build_trainer(SamMed3DTrainer_tiny, str(DATASET_ID), "3d_fullres", 0, PLANS, device=CPU)
    trainer.num_epochs = 1  # stands in for a run killed after epoch 0 (save_every=1 wrote "latest")
    _run(trainer, False, False, str(released), False, False, False)  # the -pretrained_weights path of seganypet_train
    fold = trainer.output_folder
    os.replace(os.path.join(fold, "checkpoint_final.pth"), os.path.join(fold, "checkpoint_latest.pth"))
    first = load_checkpoint(os.path.join(fold, "checkpoint_latest.pth"))
    assert first["current_epoch"] == 1 and first["trainer_name"] == "nnUNetTrainer"
    start = load_checkpoint(released)["model_state_dict"]
    w = first["network_weights"]
    assert torch.equal(w["image_encoder.pos_embed"], start["image_encoder.pos_embed"])  # frozen, from the file
    assert not torch.equal(w["mask_decoder.iou_token.weight"], start["mask_decoder.iou_token.weight"])  # learned

    cmd = ["seganypet_train", str(DATASET_ID), "3d_fullres", "0", "-tr", "SamMed3DTrainer_tiny", "-p", PLANS]
    proc = subprocess.run(cmd + ["-device", "cpu", "--c"], env=dict(os.environ), capture_output=True, text=True)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    final = load_checkpoint(os.path.join(fold, "checkpoint_final.pth"))
    assert final["current_epoch"] == 2 and final["seganypet"]["trainer_class"] == "SamMed3DTrainer_tiny"
    assert len(final["logging"]["train_losses"]) == 2 and np.isfinite(final["logging"]["train_losses"]).all()
    key = "mask_decoder.iou_token.weight"
    assert not torch.equal(final["network_weights"][key], w[key])  # epoch 2 trained on from the resumed state
