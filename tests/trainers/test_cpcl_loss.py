"""CPCL math on hand-made tensors: entropy vs variance, the confident split, down-weighting / rectification, and the
per-voxel weighted losses (all-ones weights give the unweighted losses)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from nnunetv2.training.loss.compound_losses import DC_and_CE_loss
from nnunetv2.training.loss.deep_supervision import DeepSupervisionWrapper
from nnunetv2.training.loss.dice import MemoryEfficientSoftDiceLoss

from seganypet_nnunet.trainers.cpcl_loss import (
    CPCLConfig,
    cpcl_targets,
    cross_prompt_sets,
    predictive_uncertainty,
    weighted_nnunet_loss,
)
from seganypet_nnunet.trainers.prompt_training import promptable_loss
from seganypet_nnunet.trainers.SamMed3DTrainer import dice_ce_loss


def _h(p: float) -> float:
    return -(p * math.log2(p) + (1 - p) * math.log2(1 - p))


def test_entropy_and_variance_on_known_stacks():
    # K = 4 predictions of 4 voxels: agreeing 0.9s, split 0/1, all 0.5, agreeing 0.1s
    probs = torch.tensor([[0.9, 0.0, 0.5, 0.1], [0.9, 1.0, 0.5, 0.1], [0.9, 0.0, 0.5, 0.1], [0.9, 1.0, 0.5, 0.1]])
    entropy = predictive_uncertainty(probs, measure="entropy")
    np.testing.assert_allclose(entropy, [_h(0.9), 1.0, 1.0, _h(0.1)], atol=1e-5)
    variance = predictive_uncertainty(probs, measure="variance")
    np.testing.assert_allclose(variance, [0.0, 1.0, 0.0, 0.0], atol=1e-6)  # var 0.25 / 0.25; 0.5 everywhere: 0
    with pytest.raises(ValueError, match="uncertainty"):
        predictive_uncertainty(probs, measure="std")


def test_confident_split_downweight_and_rectify():
    label = torch.tensor([1.0, 1.0, 0.0, 0.0]).view(1, 1, 4, 1, 1)
    # voxel 0: all agree on fg (confident, label kept); voxel 1: all say bg (confident though the label says fg);
    # voxel 2: split (uncertain, ensemble 0.75 -> fg); voxel 3: split (uncertain, ensemble 0.25 -> bg)
    probs = torch.tensor(
        [[0.95, 0.05, 1.0, 0.0], [0.95, 0.05, 1.0, 0.0], [0.95, 0.05, 1.0, 1.0], [0.95, 0.05, 0.0, 0.0]]
    )
    probs = probs.view(4, 1, 1, 4, 1, 1)
    target, pw, aw, confident = cpcl_targets(label, probs, config=CPCLConfig(uncertain_weight=0.2))
    assert confident.flatten().tolist() == [1, 1, 0, 0]
    assert torch.equal(target, label)
    np.testing.assert_allclose(pw.flatten(), [1, 1, 0.2, 0.2])
    assert torch.equal(aw, pw)
    target, pw, aw, _ = cpcl_targets(label, probs, config=CPCLConfig(mode="rectify", uncertain_weight=0.2))
    assert target.flatten().tolist() == [1, 1, 1, 0] and pw.flatten().tolist() == [1, 1, 1, 1]
    np.testing.assert_allclose(aw.flatten(), [1, 1, 0.2, 0.2])  # the automatic head is down-weighted
    strict = CPCLConfig(threshold=0.2)  # _h(0.95) = 0.286 > 0.2: now voxels 0 and 1 are uncertain too
    assert cpcl_targets(label, probs, config=strict)[3].sum() == 0
    with pytest.raises(ValueError, match="mode"):
        CPCLConfig(mode="flip")


def test_cross_prompt_sets_are_a_box_then_interior_clicks():
    masks = np.zeros((2, 12, 12, 12), bool)
    masks[0, 2:6, 2:6, 2:6] = True
    masks[1, 5:11, 4:9, 3:7] = True
    sets = cross_prompt_sets(masks, np.random.default_rng(0), num_sets=3, clicks_per_set=2, include_box=True)
    assert len(sets) == 3 and sets[0].box_mask.all() and (sets[0].labels == -1).all()
    for s in sets[1:]:
        assert s.points.shape == (2, 2, 3) and (s.labels == 1).all() and not s.box_mask.any()
        for b in range(2):
            assert all(masks[b][tuple(p.astype(int))] for p in s.points[b])


def test_weighted_losses_reduce_to_the_unweighted_ones_and_weights_matter():
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 1, 6, 6, 6, generator=gen)
    target = (torch.rand(2, 1, 6, 6, 6, generator=gen) > 0.5).float()
    valid, iou = torch.ones(2), torch.rand(2, 1, generator=gen)
    ones = torch.ones_like(target)
    plain = promptable_loss(logits, iou, target, valid)
    assert torch.allclose(promptable_loss(logits, iou, target, valid, voxel_weight=ones), plain)
    half = ones.clone()
    half[:, :, :3] = 0.0
    assert not torch.allclose(promptable_loss(logits, iou, target, valid, voxel_weight=half), plain)
    assert torch.allclose(dice_ce_loss(logits, target, valid, voxel_weight=ones), dice_ce_loss(logits, target, valid))

    # nnU-Net's DC_and_CE (deep supervision, batch Dice) vs our weighted version with weights 1
    inner = DC_and_CE_loss(
        {"batch_dice": True, "smooth": 1e-5, "do_bg": False, "ddp": False}, {}, dice_class=MemoryEfficientSoftDiceLoss
    )
    loss = DeepSupervisionWrapper(inner, [0.8, 0.2, 0.0])
    outs = [torch.randn(2, 3, s, s, s, generator=gen) for s in (8, 4, 2)]
    seg = torch.randint(0, 3, (2, 1, 8, 8, 8), generator=gen).float()
    segs = [seg, seg[:, :, ::2, ::2, ::2], seg[:, :, ::4, ::4, ::4]]
    w = torch.ones_like(seg)
    assert torch.allclose(weighted_nnunet_loss(loss, outs, segs, w), loss(outs, segs), atol=1e-5)
    w[:, :, :4] = 0.1
    assert not torch.allclose(weighted_nnunet_loss(loss, outs, segs, w), loss(outs, segs), atol=1e-3)
