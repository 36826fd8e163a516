"""SegAnyPETTrainer on a tiny synthetic preprocessed dataset, with nnU-Net's real data loaders (fast)."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from seganypet_nnunet.checkpoint_io import load_checkpoint
from seganypet_nnunet.run.train import build_trainer
from seganypet_nnunet.synthetic.dataset import make_dataset
from seganypet_nnunet.trainers.registry import get_trainer_class
from seganypet_nnunet.trainers.SegAnyPETTrainer import SegAnyPETTrainer
from seganypet_nnunet.trainers.variants import SegAnyPETTrainer_heldout_spleen_tiny, SegAnyPETTrainer_tiny

DATASET_ID = 903
PLANS = "SegAnyPETPlansTiny"
CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def tiny_preprocessed(tmp_path_factory):
    """nnU-Net env (raw/preprocessed/results in tmp) with a synthetic dataset planned by SegAnyPETPlannerTiny."""
    root = tmp_path_factory.mktemp("trainer_env")
    env = {f"nnUNet_{k}": str(root / k) for k in ("raw", "preprocessed", "results")}
    with pytest.MonkeyPatch.context() as mp:
        for key, value in {**env, "nnUNet_def_n_proc": "1"}.items():
            mp.setenv(key, value)
        make_dataset(DATASET_ID, num_train=6, num_test=0)
        subprocess.run(
            [
                sys.executable,
                "-m",
                "seganypet_nnunet.run.plan_and_preprocess",
                "-d",
                str(DATASET_ID),
                "-pl",
                "SegAnyPETPlannerTiny",
                "-c",
                "3d_fullres",
                "-np",
                "1",
                "--no_baseline",
            ],
            check=True,
            env=dict(os.environ),
            capture_output=True,
        )
        mp.setenv("nnUNet_n_proc_DA", "0")  # after planning: nnU-Net's planner calls set_num_threads(n_proc_DA)
        yield root


def _trainer_and_loader(trainer_class: type):
    trainer = build_trainer(trainer_class, str(DATASET_ID), "3d_fullres", 0, PLANS, device=CPU)
    trainer.initialize()
    loader, _ = trainer.get_dataloaders()
    return trainer, loader


def _unused_by_nnunet_loss(trainer) -> set[str]:
    """Seg-head parameters of deep-supervision outputs that nnU-Net's own loss weights by 0 outside DDP."""
    seg_layers = trainer.network.decoder.seg_layers
    zero = [i for i, w in enumerate(trainer.loss.weight_factors) if w == 0]
    return {
        n
        for i in zero
        for n, _ in trainer.network.named_parameters()
        if f"decoder.seg_layers.{len(seg_layers) - 1 - i}." in n
    }


class SegAnyPETTrainer_tiny_first_round(SegAnyPETTrainer_tiny):
    graded_round = 0  # no previous mask: the mask encoder only sees the zero "absent" mask


class SegAnyPETTrainer_tiny_last_round(SegAnyPETTrainer_tiny):
    graded_round = SegAnyPETTrainer_tiny.num_correction_rounds  # all clicks + previous mask


@pytest.mark.parametrize("trainer_class", [SegAnyPETTrainer_tiny_first_round, SegAnyPETTrainer_tiny_last_round])
def test_train_step_finite_loss_and_every_parameter_has_a_gradient(tiny_preprocessed, trainer_class):
    trainer, loader = _trainer_and_loader(trainer_class)
    assert type(trainer.network).__name__ == "SegAnyPETNet"
    out = trainer.train_step(next(loader))
    assert np.isfinite(out["loss"])
    missing = {n for n, p in trainer.network.named_parameters() if p.grad is None}
    # nnU-Net's DS loss gives its coarsest output weight 0 (1e-6 under DDP); everything else, the whole prompt
    # encoder and mask decoder included, must get a gradient (DDP without find_unused_parameters).
    assert missing == _unused_by_nnunet_loss(trainer)
    assert any("prompt_encoder" in n for n, _ in trainer.network.named_parameters())


def test_heldout_labels_are_never_prompt_targets(tiny_preprocessed):
    trainer, loader = _trainer_and_loader(SegAnyPETTrainer_heldout_spleen_tiny)
    spleen = trainer.dataset_json["labels"]["spleen"]
    assert trainer.heldout_label_ids == (spleen,)
    seen_valid = 0
    for _ in range(6):
        seg = next(loader)["target"][0]
        masks, valid = trainer.select_targets(seg)
        labels = seg[:, 0].numpy()
        assert not (masks & (labels == spleen)).any()
        seen_valid += int(valid.sum())
    assert seen_valid > 0
    # a patch whose only foreground is spleen has no eligible target
    only_spleen = torch.zeros_like(seg)
    only_spleen[:, :, 4:12, 4:12, 4:12] = spleen
    masks, valid = trainer.select_targets(only_spleen)
    assert not valid.any() and not masks.any()


def test_checkpoint_is_loadable_as_nnunet_trainer(tiny_preprocessed):
    trainer, _ = _trainer_and_loader(SegAnyPETTrainer_tiny)
    assert trainer.output_folder.endswith(os.path.join(f"SegAnyPETTrainer_tiny__{PLANS}__3d_fullres", "fold_0"))
    path = os.path.join(trainer.output_folder, "checkpoint_test.pth")
    trainer.save_checkpoint(path)
    checkpoint = load_checkpoint(path)
    assert checkpoint["trainer_name"] == "nnUNetTrainer"
    assert checkpoint["seganypet"]["trainer_class"] == "SegAnyPETTrainer_tiny"
    assert checkpoint["current_epoch"] == 1 and checkpoint["network_weights"]
    assert [f for f in os.listdir(trainer.output_folder) if f.startswith(".")] == []  # no temp file left


def test_budget_and_option_errors_name_the_valid_values(tiny_preprocessed):
    class SegAnyPETTrainer_badlabel(SegAnyPETTrainer):
        heldout_labels = ("not_an_organ",)

    with pytest.raises(KeyError, match="not_an_organ"):
        build_trainer(SegAnyPETTrainer_badlabel, str(DATASET_ID), "3d_fullres", 0, PLANS, device=CPU)
    trainer = build_trainer(SegAnyPETTrainer_tiny, str(DATASET_ID), "3d_fullres", 0, PLANS, device=CPU)
    assert (trainer.num_epochs, trainer.num_iterations_per_epoch, trainer.save_every) == (2, 3, 1)
    with pytest.raises(KeyError, match="SegAnyPETTrainer_tiny"):
        get_trainer_class("NoSuchTrainer")


def test_optimizer_sgd_backbone_adamw_prompt_head(tiny_preprocessed):
    from seganypet_nnunet.trainers.optim import SGDAdamW

    trainer = build_trainer(SegAnyPETTrainer_tiny, str(DATASET_ID), "3d_fullres", 0, PLANS, device=CPU)
    trainer.initialize()
    opt = trainer.optimizer
    assert isinstance(opt, SGDAdamW) and [g["rule"] for g in opt.param_groups] == ["sgd", "adamw"]
    backbone = {id(p) for p in trainer.network.image_encoder.parameters()}
    assert {id(p) for p in opt.param_groups[0]["params"]} == backbone
    assert len(opt.param_groups[1]["params"]) + len(backbone) == len(list(trainer.network.parameters()))
    trainer.lr_scheduler.step(1)  # nnU-Net's PolyLR writes one lr into every group; the head keeps its scale
    assert opt.param_groups[0]["lr"] == opt.param_groups[1]["lr"] < trainer.initial_lr
