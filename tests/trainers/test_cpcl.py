"""SegAnyPETTrainerCPCL on a tiny corrupted synthetic dataset, with nnU-Net's real data loaders (CPU, fast)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from seganypet_nnunet.checkpoint_io import load_checkpoint
from seganypet_nnunet.errors import SeganypetError
from seganypet_nnunet.run.train import build_trainer
from seganypet_nnunet.synthetic.corruption import LabelCorruption
from seganypet_nnunet.synthetic.dataset import make_dataset
from seganypet_nnunet.trainers.cpcl import (
    ExpertOnlyMixin,
    SamMed3DCPCLMixin,
    SegAnyPETTrainer_expertOnly_tiny,
    SegAnyPETTrainerCPCL_tiny,
)
from seganypet_nnunet.trainers.cpcl_loss import CPCLConfig
from seganypet_nnunet.trainers.registry import TRAINERS

DATASET_ID = 913
PLANS = "SegAnyPETPlansTiny"
CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def corrupted_env(tmp_path_factory):
    """nnU-Net env with 6 synthetic training cases, 4 of them low quality, planned by SegAnyPETPlannerTiny."""
    root = tmp_path_factory.mktemp("cpcl_env")
    env = {f"nnUNet_{k}": str(root / k) for k in ("raw", "preprocessed", "results")}
    with pytest.MonkeyPatch.context() as mp:
        for key, value in {**env, "nnUNet_def_n_proc": "1"}.items():
            mp.setenv(key, value)
        raw = make_dataset(DATASET_ID, num_train=6, num_test=0, corruption=LabelCorruption(fraction=0.67))
        cmd = [sys.executable, "-m", "seganypet_nnunet.run.plan_and_preprocess", "-d", str(DATASET_ID)]
        cmd += ["-pl", "SegAnyPETPlannerTiny", "-c", "3d_fullres", "-np", "1", "--no_baseline"]
        subprocess.run(cmd, check=True, env=dict(os.environ), capture_output=True)
        mp.setenv("nnUNet_n_proc_DA", "0")
        yield raw


class _K3(SegAnyPETTrainerCPCL_tiny):
    cpcl = CPCLConfig(num_prompt_sets=3, clicks_per_set=2)


def test_cpcl_trains_with_weights_below_one_on_low_quality_cases(corrupted_env):
    low = set(json.loads((corrupted_env / "low_quality_cases.json").read_text()))
    assert len(low) == 4
    trainer = build_trainer(_K3, str(DATASET_ID), "3d_fullres", 0, PLANS, device=CPU)
    trainer.initialize()
    assert trainer.low_quality_ids == low
    loader, _ = trainer.get_dataloaders()
    stats, expert_only = [], 0
    for _ in range(6):
        batch = next(loader)
        out = trainer.train_step(batch)
        assert np.isfinite(out["loss"])
        if trainer.last_cpcl is None:
            assert not set(map(str, batch["keys"])) & low
            expert_only += 1
        else:
            assert set(map(str, batch["keys"])) & low
            stats.append(trainer.last_cpcl)
        if len(stats) >= 2:
            break
    assert stats, "no batch held a low-quality case"
    assert all(s["samples"] >= 1 and 0 <= s["confident_fraction"] < 1 for s in stats)
    assert all(s["mean_prompt_weight"] < 1 and s["mean_auto_weight"] == s["mean_prompt_weight"] for s in stats)
    assert any(p.grad is not None for p in trainer.network.prompt_encoder.parameters())


def test_expert_only_dataset_and_unknown_case_name(corrupted_env):
    trainer = build_trainer(SegAnyPETTrainerCPCL_tiny, str(DATASET_ID), "3d_fullres", 0, PLANS, device=CPU)
    raw_list = corrupted_env / "low_quality_cases.json"
    saved = raw_list.read_text()
    try:
        raw_list.write_text(json.dumps(["SYN000_BL", "NOT_A_CASE"]))
        with pytest.raises(SeganypetError, match="'NOT_A_CASE' matches no training case"):
            trainer.initialize()
    finally:
        raw_list.write_text(saved)
    assert TRAINERS["SegAnyPETTrainerCPCL"].cpcl.uncertainty == "entropy"
    assert TRAINERS["SegAnyPETTrainerCPCL_variance"].cpcl.uncertainty == "variance"
    assert TRAINERS["SamMed3DTrainerCPCL"].cpcl.mode == "downweight"


def test_expert_only_trainer_leaves_the_low_quality_cases_out_of_training(corrupted_env):
    low = set(json.loads((corrupted_env / "low_quality_cases.json").read_text()))
    trainer = build_trainer(SegAnyPETTrainer_expertOnly_tiny, str(DATASET_ID), "3d_fullres", 0, PLANS, device=CPU)
    trainer.initialize()
    tr_keys, val_keys = trainer.do_split()
    plain_tr, plain_val = super(ExpertOnlyMixin, trainer).do_split()  # the parent trainer's split
    assert set(tr_keys) == set(plain_tr) - low and tr_keys and not set(tr_keys) & low
    assert list(val_keys) == list(plain_val)
    assert "SegAnyPETTrainer_expertOnly" in TRAINERS


class _SamCPCLHost(SamMed3DCPCLMixin):
    """The attributes ``SamMed3DCPCLMixin.loss_targets`` reads from a SamMed3DTrainer, around a real SamMed3DNet
    (the full trainer needs 128^3 ViT-B passes, too slow for this file; its loop is covered by its own tests)."""

    cpcl = CPCLConfig(num_prompt_sets=2, clicks_per_set=1)

    def __init__(self, net):
        self.net, self.device, self.current_epoch = net, CPU, 0
        self.prompt_rng, self.low_quality_ids = np.random.default_rng(0), frozenset({"LQ"})

    def _module(self):
        return self.net


def test_sam_med3d_cpcl_weights_only_the_low_quality_sample():
    from seganypet_nnunet.model.sam_med3d import SamMed3DNet
    from seganypet_nnunet.model.sam_med3d.network import SamMed3DEmbedding

    torch.manual_seed(0)
    net = SamMed3DNet().eval()
    host = _SamCPCLHost(net)
    pe = net.prompt_encoder.get_dense_pe()
    embedding = SamMed3DEmbedding(torch.randn(2, 384, 8, 8, 8), pe, (128, 128, 128))
    masks = np.zeros((2, 128, 128, 128), bool)
    masks[:, 40:80, 50:90, 30:70] = True
    target = torch.as_tensor(masks).unsqueeze(1).float()
    valid = np.array([True, True])
    same, none = host.loss_targets(embedding, masks, valid, {"keys": ["EXPERT", "EXPERT"]}, target)
    assert same is target and none is None and host.last_cpcl is None
    new_target, weight = host.loss_targets(embedding, masks, valid, {"keys": ["EXPERT", "LQ"]}, target)
    assert torch.equal(new_target, target) and host.last_cpcl["samples"] == 1
    assert (weight[0] == 1).all() and (weight[1] < 1).any()
    assert (torch.isclose(weight[1], torch.tensor(1.0)) | torch.isclose(weight[1], torch.tensor(0.1))).all()


def test_tiny_cpcl_run_through_seganypet_train_resumes_with_c(corrupted_env):
    interrupted = build_trainer(SegAnyPETTrainerCPCL_tiny, str(DATASET_ID), "3d_fullres", 0, PLANS, device=CPU)
    interrupted.num_epochs = 1  # stands in for a run killed after epoch 0 (save_every=1 wrote "latest")
    interrupted.run_training()
    fold = interrupted.output_folder
    os.replace(os.path.join(fold, "checkpoint_final.pth"), os.path.join(fold, "checkpoint_latest.pth"))
    cmd = ["seganypet_train", str(DATASET_ID), "3d_fullres", "0", "-tr", "SegAnyPETTrainerCPCL_tiny", "-p", PLANS]
    proc = subprocess.run(cmd + ["-device", "cpu", "--c"], env=dict(os.environ), capture_output=True, text=True)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    final = load_checkpoint(os.path.join(fold, "checkpoint_final.pth"))
    assert final["current_epoch"] == 2 and final["seganypet"]["trainer_class"] == "SegAnyPETTrainerCPCL_tiny"
    assert len(final["logging"]["train_losses"]) == 2 and np.isfinite(final["logging"]["train_losses"]).all()
    assert "CPCL: 4 low-quality training cases" in proc.stdout
