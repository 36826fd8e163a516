"""Building blocks of SegAnyPETTrainer's click loop: per-batch prompt state and the promptable loss.

Everything here is in **network-input voxel** space (the axis order of the patch tensor nnU-Net's data loader yields).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from seganypet_nnunet.prompts.simulation import first_click, jittered_box, next_clicks_batch
from seganypet_nnunet.prompts.targets import sample_targets
from seganypet_nnunet.prompts.types import Prompts


def pick_targets(
    seg: np.ndarray, rng: np.random.Generator, *, exclude_labels: Sequence[int], lesion_label: int | None
) -> tuple[np.ndarray, np.ndarray]:
    """One random prompt target per sample.

    Args:
        seg: (B, P0, P1, P2) integer label patches (full resolution, network-input voxels).
        rng: random generator.
        exclude_labels: label ids never used as targets (held-out classes).
        lesion_label: label id split into connected-component instances, or None.

    Returns:
        masks (B, P0, P1, P2) bool (all False where a sample has no target), valid (B,) bool.
    """
    masks = np.zeros(seg.shape, dtype=bool)
    valid = np.zeros(seg.shape[0], dtype=bool)
    for b in range(seg.shape[0]):
        targets = sample_targets(seg[b], rng, exclude_labels=exclude_labels, lesion_label=lesion_label)
        if targets:
            masks[b] = targets[int(rng.integers(len(targets)))].mask
            valid[b] = True
    return masks, valid


@dataclass
class ClickState:
    """Prompts accumulated over the rounds of one training step (numpy, network-input voxels).

    Attributes:
        points: (B, N, 3) float64 clicks; labels: (B, N) int64 1/0/-1 (padding); boxes: (B, 2, 3) float64;
        box_mask: (B,) bool.
    """

    points: np.ndarray
    labels: np.ndarray
    boxes: np.ndarray
    box_mask: np.ndarray

    @classmethod
    def first_prompts(
        cls, masks: np.ndarray, valid: np.ndarray, rng: np.random.Generator | None, box_probability: float
    ) -> ClickState:
        """A random interior click, or with ``box_probability`` a jittered box, per valid sample of (B, P0, P1, P2).

        ``rng=None`` is deterministic (tests): the interior-most click, or the tight box when ``box_probability >= 1``.
        """
        n = masks.shape[0]
        state = cls(np.zeros((n, 1, 3)), np.full((n, 1), -1, np.int64), np.zeros((n, 2, 3)), np.zeros(n, bool))
        for b in np.flatnonzero(valid):
            if (box_probability >= 1) if rng is None else (rng.random() < box_probability):
                state.boxes[b] = np.stack(jittered_box(masks[b], rng, shape=masks.shape[1:]))
                state.box_mask[b] = True
            else:
                state.points[b, 0], _ = first_click(masks[b], rng)
                state.labels[b, 0] = 1
        return state

    def add_correction_clicks(
        self, pred: np.ndarray, masks: np.ndarray, valid: np.ndarray, rng: np.random.Generator | None
    ) -> None:
        """Appends one click per sample in the error of ``pred`` (B, P0, P1, P2) bool vs ``masks`` (padding if none).

        ``rng=None``: the deterministic evaluation-protocol click (``next_click``)."""
        coords, labels, _ = next_clicks_batch(pred, masks, rng)
        labels = np.where(valid, labels, -1)
        self.points = np.concatenate([self.points, coords[:, None]], axis=1)
        self.labels = np.concatenate([self.labels, labels[:, None]], axis=1)

    def to_prompts(
        self,
        prev_logits: torch.Tensor | None,
        device: torch.device,
        patch_shape: Sequence[int],
        present: np.ndarray | None = None,
    ) -> Prompts:
        """Tensors on ``device``. ``prev_logits`` (B, 1, *patch_shape) is the dense prompt; None gives a zero mask
        marked absent, so the mask encoder and the learned "no mask" embedding are both in every graph (DDP).
        ``present`` (B,) bool marks which samples' ``prev_logits`` are real (default: all, when given)."""
        n = self.points.shape[0]
        if present is None:
            present = np.full(n, prev_logits is not None)
        present = torch.as_tensor(np.asarray(present, bool), device=device)
        if prev_logits is None:
            prev_logits = torch.zeros((n, 1, *patch_shape), device=device)
        return Prompts(
            points=torch.as_tensor(self.points, dtype=torch.float32, device=device),
            point_labels=torch.as_tensor(self.labels, dtype=torch.int64, device=device),
            boxes=torch.as_tensor(self.boxes, dtype=torch.float32, device=device),
            box_mask=torch.as_tensor(self.box_mask, device=device),
            mask=prev_logits,
            mask_present=present,
        )


def promptable_loss(
    mask_logits: torch.Tensor,
    iou_pred: torch.Tensor,
    target: torch.Tensor,
    valid: torch.Tensor,
    iou_weight: float = 1.0,
    smooth: float = 1e-5,
    *,
    voxel_weight: torch.Tensor | None = None,
) -> torch.Tensor:
    """Soft Dice + BCE on the mask logits, + ``iou_weight`` x MSE of the IoU head vs the achieved IoU.

    Args:
        mask_logits: (B, 1, P0, P1, P2) float logits; iou_pred: (B, 1) float.
        target: (B, 1, P0, P1, P2) float {0, 1}; valid: (B,) float, 0 for samples without a target (their terms are
            multiplied by 0, which keeps every parameter in the graph).
        voxel_weight: optional (B, 1, P0, P1, P2) float >= 0 per-voxel weights (CPCL): weighted Dice sums, weighted
            mean BCE and IoU over weighted voxels. None is all ones (the unweighted loss).

    Returns:
        scalar, mean over valid samples (0 with a graph when none is valid).
    """
    logits = mask_logits.float().flatten(1)
    tgt = target.float().flatten(1)
    w = torch.ones_like(tgt) if voxel_weight is None else voxel_weight.float().flatten(1)
    prob = torch.sigmoid(logits)
    dice = 1 - (2 * (w * prob * tgt).sum(1) + smooth) / ((w * prob).sum(1) + (w * tgt).sum(1) + smooth)
    bce = F.binary_cross_entropy_with_logits(logits, tgt, reduction="none")
    bce = (w * bce).sum(1) / w.sum(1).clamp_min(1e-8)
    with torch.no_grad():
        hard = (logits > 0).float()
        inter, union = (w * hard * tgt).sum(1), (w * ((hard + tgt) > 0).float()).sum(1)
        iou_true = torch.where(union > 0, inter / union.clamp_min(1e-8), torch.ones_like(union))
    iou_mse = (iou_pred.float()[:, 0] - iou_true) ** 2
    per_sample = dice + bce + iou_weight * iou_mse
    return (per_sample * valid).sum() / valid.sum().clamp_min(1)


def pet_prior_prompts(
    suv: np.ndarray,
    state: ClickState,
    valid: np.ndarray,
    spacing: Sequence[float],
    rng: np.random.Generator | None,
    probability: float,
) -> tuple[np.ndarray | None, np.ndarray]:
    """The session's PET prior (``prompts.pet_regions.prior_region`` with the default gate of
    ``inference/click_policy.py``) for the first clicks of a batch, as a training prompt.

    Args:
        suv: (B, P0, P1, P2) float SUV patches (the PET channel; the planner keeps SUV unnormalised).
        state: the first prompts; only samples whose first prompt is a positive click get a prior.
        valid: (B,) bool samples with a target.
        spacing: voxel size in mm in the patch's axis order.
        rng: draws which samples try the prior (each with ``probability``).

    Returns:
        (priors (B, P0, P1, P2) bool or None when no sample got one, has (B,) bool).
    """
    from seganypet_nnunet.prompts.pet_regions import prior_region

    has = np.zeros(len(valid), bool)
    priors = np.zeros(suv.shape, bool)
    for b in np.flatnonzero(valid & (state.labels[:, 0] == 1)):
        if rng is None or rng.random() < probability:  # rng None: deterministic (tests), every sample tries
            region = prior_region(suv[b], state.points[b, 0], spacing)
            if region is not None:
                priors[b], has[b] = region, True
    return (priors if has.any() else None), has
