"""The trainers' mixed-precision (cuda-only) code path on the CPU: bf16 autocast + nnU-Net's GradScaler branch.

On cuda nnU-Net runs the forward pass and the loss under ``autocast("cuda")`` (fp16) and steps through a GradScaler;
on the CPU it runs fp32, so no CPU test ever ran our prompt path, click simulation, CPCL or SAM-Med3D loop in
reduced precision. Here ``cpu_autocast_dtype = torch.bfloat16`` makes ``SeganypetBaseTrainer.amp_context`` autocast
exactly where cuda would, and the trainer gets a CPU ``GradScaler`` so ``scale -> backward -> unscale_ -> clip ->
step -> update`` (the cuda branch) runs too. Each trainer does one optimiser step on nnU-Net's real loaders: finite
loss, finite gradients and weights, low precision actually used, and every part of the network updated.

SamMed3DTrainer runs the real ``SamMed3DNet`` class with a small random-init config (32^3 crop, 2 ViT blocks,
width 48; the released ViT-B at 128^3 costs minutes per step on 2 cores) on the Tiny plans' data.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from seganypet_nnunet.model.sam_med3d.network import SamMed3DConfig, sam_med3d_architecture
from seganypet_nnunet.run.train import build_trainer
from seganypet_nnunet.synthetic.corruption import LabelCorruption
from seganypet_nnunet.synthetic.dataset import make_dataset
from seganypet_nnunet.trainers.cpcl import SamMed3DTrainerCPCL, SegAnyPETTrainerCPCL
from seganypet_nnunet.trainers.cpcl_loss import CPCLConfig
from seganypet_nnunet.trainers.SamMed3DTrainer import SamMed3DTrainer
from seganypet_nnunet.trainers.SegAnyPETTrainer import SegAnyPETTrainer

DATASET_ID = 921
PLANS = "SegAnyPETPlansTiny"
SAM_PLANS = "SamMed3DPlansTinyTest"
CPU = torch.device("cpu")
# SamMed3DNet at 32^3 with an 8^3 token grid (as the released 128^3 / 16), 2 blocks (one windowed, one global).
TINY_SAM = SamMed3DConfig(
    img_size=32,
    patch_size=4,
    embed_dim=48,
    depth=2,
    num_heads=2,
    window_size=8,
    global_attn_indexes=(1,),
    prompt_embed_dim=48,
    mask_in_chans=4,
    iou_head_hidden_dim=16,
)


@pytest.fixture(scope="module")
def amp_env(tmp_path_factory):
    """4 synthetic cases (2 low quality) planned with SegAnyPETPlannerTiny, plus a plans file naming the tiny
    SamMed3DNet on the same preprocessed data (``data_identifier`` unchanged)."""
    root = tmp_path_factory.mktemp("autocast_env")
    env = {f"nnUNet_{k}": str(root / k) for k in ("raw", "preprocessed", "results")}
    with pytest.MonkeyPatch.context() as mp:
        for key, value in {**env, "nnUNet_def_n_proc": "1"}.items():
            mp.setenv(key, value)
        raw = make_dataset(DATASET_ID, num_train=4, num_test=0, corruption=LabelCorruption(fraction=0.5))
        cmd = [sys.executable, "-m", "seganypet_nnunet.run.plan_and_preprocess", "-d", str(DATASET_ID)]
        cmd += ["-pl", "SegAnyPETPlannerTiny", "-c", "3d_fullres", "-np", "1", "--no_baseline"]
        subprocess.run(cmd, check=True, env=dict(os.environ), capture_output=True)
        mp.setenv("nnUNet_n_proc_DA", "0")
        folder = root / "preprocessed" / raw.name
        plans = json.loads((folder / f"{PLANS}.json").read_text())
        cfg = plans["configurations"]["3d_fullres"]
        cfg["architecture"] = sam_med3d_architecture(TINY_SAM)
        cfg["patch_size"] = [TINY_SAM.img_size] * 3
        plans["plans_name"] = SAM_PLANS
        (folder / f"{SAM_PLANS}.json").write_text(json.dumps(plans))
        yield root


class _PromptPath(SegAnyPETTrainer):
    """Every round runs: first prompt (with the PET prior), 2 simulated correction clicks, the last one graded."""

    cpu_autocast_dtype = torch.bfloat16
    num_correction_rounds = 2
    graded_round = 2
    pet_prior_probability = 1.0


class _CPCL(SegAnyPETTrainerCPCL):
    cpu_autocast_dtype = torch.bfloat16
    cpcl = CPCLConfig(num_prompt_sets=3, clicks_per_set=2)
    num_correction_rounds = 1


class _Sam(SamMed3DTrainer):
    cpu_autocast_dtype = torch.bfloat16
    num_click_iterations = 4


class _SamCPCL(SamMed3DTrainerCPCL):
    cpu_autocast_dtype = torch.bfloat16
    cpcl = CPCLConfig(num_prompt_sets=2, clicks_per_set=1)
    num_click_iterations = 3


# (trainer, plans, parameter-name prefixes that must all be updated by the step)
CASES = {
    "prompt_path": (_PromptPath, PLANS, ("image_encoder.", "prompt_encoder.", "mask_decoder.")),
    "cpcl": (_CPCL, PLANS, ("image_encoder.", "prompt_encoder.", "mask_decoder.")),
    "sam_med3d": (_Sam, SAM_PLANS, ("image_encoder.", "prompt_encoder.", "mask_decoder.")),
    "sam_med3d_cpcl": (_SamCPCL, SAM_PLANS, ("image_encoder.", "mask_decoder.")),
}


def _low_precision_outputs(net: torch.nn.Module) -> tuple[list[torch.dtype], list]:
    """Records the output dtype of every Linear / Conv3d / ConvTranspose3d forward (hooks to remove afterwards)."""
    seen: list[torch.dtype] = []
    kinds = (torch.nn.Linear, torch.nn.Conv3d, torch.nn.ConvTranspose3d)
    layers = [m for m in net.modules() if isinstance(m, kinds)]
    hooks = [m.register_forward_hook(lambda _m, _i, out: seen.append(out.dtype)) for m in layers]
    return seen, hooks


@pytest.mark.parametrize("case", list(CASES))
def test_one_bf16_autocast_step_with_grad_scaler(amp_env, case):
    trainer_class, plans, parts = CASES[case]
    torch.manual_seed(0)
    trainer = build_trainer(trainer_class, str(DATASET_ID), "3d_fullres", 0, plans, device=CPU)
    trainer.initialize()
    trainer.prompt_rng = np.random.default_rng(0)
    if hasattr(trainer, "low_quality_ids"):  # every training case is low quality: the CPCL path runs on each sample
        trainer.low_quality_ids = frozenset(trainer.dataset_class.get_identifiers(trainer.preprocessed_dataset_folder))
    trainer.grad_scaler = torch.amp.GradScaler("cpu")  # nnU-Net makes one on cuda only; this runs that branch
    loader, _ = trainer.get_dataloaders()
    net = trainer._module()
    before = {n: p.detach().clone() for n, p in net.named_parameters() if p.requires_grad}
    seen, hooks = _low_precision_outputs(net)
    try:
        out = trainer.train_step(next(loader))
    finally:
        for h in hooks:
            h.remove()
    assert np.isfinite(out["loss"]) and out["loss"] > 0, f"{case}: loss {out['loss']}"
    assert torch.bfloat16 in seen, f"{case}: no layer ran in bf16 (autocast not applied)"
    if hasattr(trainer, "low_quality_ids"):
        assert trainer.last_cpcl is not None and trainer.last_cpcl["samples"] >= 1
    assert trainer.grad_scaler.get_scale() == 65536.0, "GradScaler skipped the step (inf/NaN gradients)"
    params = dict(net.named_parameters())
    for name, p in params.items():
        assert torch.isfinite(p).all(), f"{case}: {name} not finite after the step"
        if p.grad is not None:
            assert torch.isfinite(p.grad).all(), f"{case}: gradient of {name} not finite"
    changed = {n for n, old in before.items() if not torch.equal(old, params[n])}
    for prefix in parts:
        names = [n for n in before if n.startswith(prefix)]
        assert names and any(n in changed for n in names), f"{case}: no {prefix}* parameter was updated"
    assert len(changed) >= 0.75 * len(before), f"{case}: only {len(changed)} of {len(before)} parameters updated"
