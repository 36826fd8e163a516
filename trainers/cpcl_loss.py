"""Cross-prompting confident learning (CPCL): uncertainty over prompt-based predictions, the confident / uncertain
split, and the per-voxel weighted losses it feeds (inspired by SegAnyPET's CPCL; the trainers are in ``cpcl.py``).

For a low-quality sample the trainer predicts the same target under K prompt sets (``cross_prompt_sets``). Per voxel:

- predictive **entropy** (default) of the ensemble mean p = mean_k p_k, in bits: H = -p log2 p - (1 - p) log2(1 - p),
  in [0, 1] (1 at p = 0.5); or the **variance** over k of p_k divided by its maximum 0.25, also in [0, 1];
- a voxel is *confident* when that uncertainty is <= ``threshold`` (default 0.5: for entropy, p outside about
  [0.11, 0.89]; for variance, a standard deviation <= 0.35);
- confident voxels keep the label; uncertain ones get weight ``uncertain_weight`` (mode ``"downweight"``) or take
  the ensemble's prediction p > 0.5 as label at full weight in the prompted loss (mode ``"rectify"``). The automatic
  head gets the down-weighting in both modes (a binary ensemble gives no class to rectify to).

Every tensor is in network-input voxel space, (B, 1, P0, P1, P2) unless stated.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from nnunetv2.training.loss.compound_losses import DC_and_CE_loss
from nnunetv2.training.loss.deep_supervision import DeepSupervisionWrapper
from torch import nn

from seganypet_nnunet.prompts.simulation import first_click, jittered_box
from seganypet_nnunet.trainers.prompt_training import ClickState

MEASURES = ("entropy", "variance")
MODES = ("downweight", "rectify")


@dataclass(frozen=True)
class CPCLConfig:
    """CPCL settings (module docstring).

    Attributes:
        num_prompt_sets: K, predictions per low-quality sample (>= 2).
        clicks_per_set: random interior clicks in each click set.
        include_box: the first prompt set is a jittered box instead of clicks.
        uncertainty: ``"entropy"`` or ``"variance"``.
        threshold: confident where the normalised uncertainty (in [0, 1]) is <= this.
        mode: ``"downweight"`` or ``"rectify"``.
        uncertain_weight: loss weight of uncertain voxels (in [0, 1]).
        warmup_epochs: epochs before CPCL starts (low-quality cases train as expert cases until then).
    """

    num_prompt_sets: int = 4
    clicks_per_set: int = 3
    include_box: bool = True
    uncertainty: str = "entropy"
    threshold: float = 0.5
    mode: str = "downweight"
    uncertain_weight: float = 0.1
    warmup_epochs: int = 0

    def __post_init__(self) -> None:
        if self.num_prompt_sets < 2 or self.clicks_per_set < 1:
            raise ValueError(f"CPCLConfig: need num_prompt_sets >= 2 and clicks_per_set >= 1, got {self}")
        if self.uncertainty not in MEASURES:
            raise ValueError(f"CPCLConfig.uncertainty must be one of {MEASURES}, got {self.uncertainty!r}")
        if self.mode not in MODES:
            raise ValueError(f"CPCLConfig.mode must be one of {MODES}, got {self.mode!r}")
        if not 0 <= self.threshold <= 1 or not 0 <= self.uncertain_weight <= 1:
            raise ValueError(f"CPCLConfig: threshold and uncertain_weight must be in [0, 1], got {self}")


def predictive_uncertainty(probs: torch.Tensor, *, measure: str = "entropy") -> torch.Tensor:
    """Per-voxel uncertainty in [0, 1] of K foreground-probability maps ``probs`` (K, ...), shape (...).

    ``"entropy"``: binary entropy in bits of the mean over K; ``"variance"``: population variance over K / 0.25.
    """
    if measure == "entropy":
        p = probs.float().mean(0).clamp(1e-7, 1 - 1e-7)
        return -(p * torch.log2(p) + (1 - p) * torch.log2(1 - p))
    if measure == "variance":
        return probs.float().var(0, unbiased=False) / 0.25
    raise ValueError(f"uncertainty measure must be one of {MEASURES}, got {measure!r}")


def cpcl_targets(
    label: torch.Tensor, probs: torch.Tensor, *, config: CPCLConfig
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Targets and voxel weights of low-quality samples.

    Args:
        label: (B, 1, P0, P1, P2) float {0, 1}, the (low-quality) label of each sample's prompt target.
        probs: (K, B, 1, P0, P1, P2) float foreground probabilities of the K prompt sets.
        config: threshold, measure and mode.

    Returns:
        (prompt_target, prompt_weight, auto_weight, confident): float (B, 1, P0, P1, P2) each, ``confident`` as 0/1.
    """
    confident = predictive_uncertainty(probs, measure=config.uncertainty) <= config.threshold
    down = torch.where(confident, 1.0, float(config.uncertain_weight))
    if config.mode == "downweight":
        return label, down, down, confident.float()
    ensemble = (probs.float().mean(0) > 0.5).float()
    return torch.where(confident, label.float(), ensemble), torch.ones_like(down), down, confident.float()


def cross_prompt_sets(
    masks: np.ndarray, rng: np.random.Generator, *, num_sets: int, clicks_per_set: int, include_box: bool
) -> list[ClickState]:
    """K prompt sets for the same targets: set 0 a jittered box if ``include_box``, the others ``clicks_per_set``
    random interior positive clicks each (``first_click``). ``masks``: (B, P0, P1, P2) bool, every one non-empty,
    network-input voxels; the ClickStates hold coordinates in that space."""
    n = masks.shape[0]
    sets = []
    for k in range(num_sets):
        if k == 0 and include_box:
            boxes = np.stack([np.stack(jittered_box(m, rng, shape=masks.shape[1:])) for m in masks])
            sets.append(ClickState(np.zeros((n, 1, 3)), np.full((n, 1), -1, np.int64), boxes, np.ones(n, bool)))
            continue
        points = np.array([[first_click(m, rng)[0] for _ in range(clicks_per_set)] for m in masks])
        labels = np.ones((n, clicks_per_set), np.int64)
        sets.append(ClickState(points, labels, np.zeros((n, 2, 3)), np.zeros(n, bool)))
    return sets


def _weighted_dc_ce(loss: DC_and_CE_loss, output: torch.Tensor, target: torch.Tensor, weight: torch.Tensor):
    if loss.ignore_label is not None:
        keep = target != loss.ignore_label
        weight, target = weight * keep, torch.where(keep, target, 0)
    dice = loss.dc(output, target, loss_mask=weight) if loss.weight_dice else 0
    ce = F.cross_entropy(output.float(), target[:, 0].long(), reduction="none")
    ce = (ce * weight[:, 0]).sum() / weight.sum().clamp_min(1e-8)
    return loss.weight_ce * ce + loss.weight_dice * dice


def weighted_nnunet_loss(
    loss: nn.Module, output: torch.Tensor | list[torch.Tensor], target, voxel_weight: torch.Tensor
) -> torch.Tensor:
    """nnU-Net's own ``DC_and_CE_loss`` (optionally in its ``DeepSupervisionWrapper``) with per-voxel weights: the
    weighted mean of the CE and the soft Dice with ``voxel_weight`` as nnU-Net's ``loss_mask``. All-ones weights give
    nnU-Net's loss. ``voxel_weight``: (B, 1, P0, P1, P2) at full resolution, area-averaged to coarser outputs."""
    if isinstance(loss, DeepSupervisionWrapper):
        factors, inner, outputs, targets = loss.weight_factors, loss.loss, output, target
    else:
        factors, inner, outputs, targets = (1.0,), loss, [output], [target]
    if not isinstance(inner, DC_and_CE_loss):
        raise TypeError(f"CPCL weights nnU-Net's DC_and_CE_loss (label datasets), not {type(inner).__name__}")
    total = 0.0
    for factor, out, tgt in zip(factors, outputs, targets, strict=True):
        if factor == 0:
            continue
        w = voxel_weight
        if w.shape[2:] != tgt.shape[2:]:
            w = F.interpolate(w, size=tuple(tgt.shape[2:]), mode="area")
        total = total + factor * _weighted_dc_ce(inner, out, tgt, w.to(out.device))
    return total
