"""SegAnyPETTrainer: nnU-Net's automatic training plus SAM-style simulated click-loop training of the prompt head."""

from __future__ import annotations

import contextlib

import numpy as np
import torch
import torch.distributed as dist
from nnunetv2.training.lr_scheduler.polylr import PolyLRScheduler
from torch import nn
from torch._dynamo import OptimizedModule

from seganypet_nnunet.cli_args import CUDA
from seganypet_nnunet.model.network import ImageEmbedding
from seganypet_nnunet.trainers.base import SeganypetBaseTrainer
from seganypet_nnunet.trainers.optim import SGDAdamW
from seganypet_nnunet.trainers.prompt_training import ClickState, pet_prior_prompts, pick_targets, promptable_loss


class SegAnyPETTrainer(SeganypetBaseTrainer):
    """Trains ``SegAnyPETNet`` (named in the plans) for automatic AND promptable segmentation.

    Per step: the backbone runs once (``encode``), giving nnU-Net's deep-supervision logits (nnU-Net's own
    ``_build_loss``, Dice + CE, unchanged) and the image embedding. Per sample one target is drawn from the
    full-resolution label patch (``target[0]``) with ``sample_targets`` (organ classes, lesion instances, sometimes
    unions / sub-regions). First prompt: a random interior click, or a jittered box with ``box_probability``. Then
    ``num_correction_rounds`` rounds each add one click in the current error (``next_click``) and feed the previous
    mask logits back as the dense prompt; clicks accumulate. The decoder runs once per round.

    Gradient choice: each step draws ONE round ``graded`` uniformly from 0..num_correction_rounds; the rounds before
    it run under ``torch.no_grad()`` (they only produce the simulated errors and the previous mask, fed back
    detached), the graded round is differentiated with Dice + BCE + IoU-MSE (``promptable_loss``) and later rounds
    are skipped. In expectation this is SAM-Med3D's loss summed over rounds (divided by their number) at the cost of
    one decoder backward and on average (R + 2) / 2 decoder passes per step. Every round passes a dense mask tensor
    (zeros marked absent in round 0) and a box tensor (``box_mask``), so the "no mask"/"no box" embeddings and the
    mask/box encoders are in every graph (DDP needs every parameter to get a gradient).

    Held-out classes: ``heldout_labels`` (dataset.json label names) are never prompt targets, so the PROMPTED decoder
    never sees them (zero-shot evaluation). The automatic nnU-Net head still learns every class in dataset.json.

    Validation, ``perform_actual_validation`` and ``--npz`` are nnU-Net's own (automatic mode: ``forward(x)``).
    Autocast (``amp_context``) / GradScaler only on cuda, as nnU-Net. Under DDP the prompted path calls ``encode`` /
    ``decode`` on the wrapped module, which bypasses ``DistributedDataParallel.forward`` (its reducer never arms), so
    gradients are averaged explicitly across ranks in ``_all_reduce_gradients``; every parameter gets a gradient each
    step.

    Attributes:
        num_correction_rounds: correction clicks per step after the first prompt.
        graded_round: the differentiated round, or None to draw it per step (an int is for tests / ablations).
        box_probability: chance that the first prompt is a jittered box instead of a click.
        prompt_loss_weight: weight of the promptable loss added to nnU-Net's loss.
        iou_loss_weight: weight of the IoU-head MSE inside the promptable loss.
        heldout_labels: label names never used as prompt targets.
        lesion_label_name: label split into connected-component instances (absent from dataset.json = none).
        grad_clip: max gradient norm (nnU-Net: 12).
        pet_prior_probability: chance that a first click on a hot spot also gets the session's PET prior as round
            0's mask prompt (``initial_mask_prompt``); 0 trains without it.
        prompt_lr_scale: the prompt head (everything outside ``image_encoder``) is optimised with AdamW at
            ``prompt_lr_scale`` x nnU-Net's lr (same poly decay); the backbone keeps nnU-Net's SGD (``SGDAdamW``,
            one optimizer object, so nnU-Net's checkpointing is unchanged).
    """

    num_correction_rounds: int = 4
    graded_round: int | None = None
    box_probability: float = 0.3
    prompt_loss_weight: float = 1.0
    iou_loss_weight: float = 1.0
    heldout_labels: tuple[str, ...] = ()
    lesion_label_name: str = "lesion"
    grad_clip: float = 12.0
    prompt_lr_scale: float = 0.1
    pet_prior_probability: float = 0.5

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict, device: torch.device = CUDA):
        super().__init__(plans, configuration, fold, dataset_json, device)
        labels = self.dataset_json["labels"]
        unknown = [n for n in self.heldout_labels if n not in labels]
        if unknown:
            raise KeyError(f"{type(self).__name__}.heldout_labels {unknown} not in dataset.json labels {list(labels)}")
        self.heldout_label_ids = tuple(int(labels[n]) for n in self.heldout_labels)
        lesion = labels.get(self.lesion_label_name)
        self.lesion_label_id = None if lesion is None else int(lesion)
        self.prompt_rng = np.random.default_rng()

    def configure_optimizers(self):
        """nnU-Net's SGD (nesterov, momentum 0.99) for the backbone, AdamW for the prompt head; nnU-Net's PolyLR."""
        net = self._module()
        backbone = list(net.image_encoder.parameters())
        ids = {id(p) for p in backbone}
        head = [p for p in net.parameters() if id(p) not in ids]
        optimizer = SGDAdamW(
            [
                {"params": backbone},
                {"params": head, "rule": "adamw", "lr_scale": self.prompt_lr_scale, "weight_decay": 0.0},
            ],
            self.initial_lr,
            momentum=0.99,
            weight_decay=self.weight_decay,
        )
        return optimizer, PolyLRScheduler(optimizer, self.initial_lr, self.num_epochs)

    def train_step(self, batch: dict) -> dict:
        """nnU-Net's step with the promptable loss added; ``batch['target']`` is the deep-supervision list."""
        data = batch["data"].to(self.device, non_blocking=True)
        target = batch["target"]
        target = (
            [t.to(self.device, non_blocking=True) for t in target]
            if isinstance(target, list)
            else target.to(self.device, non_blocking=True)
        )
        self.optimizer.zero_grad(set_to_none=True)
        with self.amp_context():
            embedding = self._module().encode(data)
            loss = self.step_loss(embedding, target, batch)
        self._backward_and_step(loss)
        return {"loss": loss.detach().cpu().numpy()}

    def step_loss(self, embedding: ImageEmbedding, target, batch: dict) -> torch.Tensor:
        """nnU-Net's loss on the automatic output + ``prompt_loss_weight`` x the promptable loss (hook: CPCL)."""
        full_res = target[0] if isinstance(target, list) else target
        return self.loss(embedding.auto_output, target) + self.prompt_loss_weight * self.prompted_loss(
            embedding, full_res, batch.get("data")
        )

    def prompted_loss(
        self, embedding: ImageEmbedding, seg: torch.Tensor, data: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Simulated click loop on one embedding; the loss of one randomly drawn round (see class docstring).

        Args:
            embedding: ``encode`` output for the (B, C, P0, P1, P2) batch.
            seg: (B, 1, P0, P1, P2) full-resolution label patch (network-input voxels).
            data: the (B, C, P0, P1, P2) input batch (channel 0 = PET SUV) for the PET-prior rounds, or None.

        Returns:
            scalar promptable loss of round ``graded`` (0 = first prompt only).
        """
        return self.click_loop_loss(embedding, *self.first_prompts(seg), data=data)

    def click_loop_loss(
        self,
        embedding: ImageEmbedding,
        masks: np.ndarray,
        valid: np.ndarray,
        state: ClickState,
        *,
        target: torch.Tensor | None = None,
        voxel_weight: torch.Tensor | None = None,
        data: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The click loop from given first prompts (``first_prompts`` output); the graded round's loss against
        ``target`` (B, 1, P0, P1, P2) float (default: ``masks``) with optional per-voxel ``voxel_weight`` (same shape).
        Correction clicks always come from ``masks``; ``data`` (the input batch) enables round 0's PET prior."""
        net, rng = self._module(), self.prompt_rng
        graded, round_weight = self.draw_graded_round()
        prev, present = self.initial_mask_prompt(data, state, valid)
        for r in range(graded + 1):
            if r > 0:
                state.add_correction_clicks((prev > 0)[:, 0].cpu().numpy(), masks, valid, rng)
            with torch.no_grad() if r < graded else contextlib.nullcontext():
                prompts = state.to_prompts(prev, self.device, masks.shape[1:], present if r == 0 else None)
                logits, iou = net.decode(embedding, prompts)
            prev = logits.detach()
        if target is None:
            target = torch.as_tensor(masks, device=self.device).unsqueeze(1)
        weight = torch.as_tensor(valid, dtype=torch.float32, device=self.device)
        return round_weight * promptable_loss(
            logits, iou, target, weight, self.iou_loss_weight, voxel_weight=voxel_weight
        )

    def initial_mask_prompt(
        self, data: torch.Tensor | None, state: ClickState, valid: np.ndarray
    ) -> tuple[torch.Tensor | None, np.ndarray | None]:
        """Round 0's dense prompt: the session's PET prior for a first click on a hot spot (with
        ``pet_prior_probability``), so the decoder learns to refine the reader's region it gets at inference.

        Returns:
            ((B, 1, P0, P1, P2) logits +-10 or None, (B,) bool: which samples have one).
        """
        if data is None or self.pet_prior_probability <= 0:
            return None, None
        spacing = self.configuration_manager.spacing  # patch axis order
        suv = data[:, 0].detach().float().cpu().numpy()
        priors, has = pet_prior_prompts(suv, state, valid, spacing, self.prompt_rng, self.pet_prior_probability)
        if priors is None:
            return None, None
        return torch.as_tensor(np.where(priors, 10.0, -10.0)[:, None], dtype=torch.float32, device=self.device), has

    def first_prompts(self, seg: torch.Tensor) -> tuple[np.ndarray, np.ndarray, ClickState]:
        """Targets of a (B, 1, X, Y, Z) label patch and their first prompts: (masks, valid, ClickState)."""
        masks, valid = self.select_targets(seg)
        return masks, valid, ClickState.first_prompts(masks, valid, self.prompt_rng, self.box_probability)

    def draw_graded_round(self) -> tuple[int, float]:
        """The differentiated round (uniform over 0..num_correction_rounds) and its loss weight (1 here)."""
        if self.graded_round is not None:
            return self.graded_round, 1.0
        return int(self.prompt_rng.integers(self.num_correction_rounds + 1)), 1.0

    def select_targets(self, seg: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """One prompt target per sample of a (B, 1, P0, P1, P2) label patch, never a held-out label.

        Returns:
            masks (B, P0, P1, P2) bool, network-input voxels; valid (B,) bool (False: no eligible target in the patch).
        """
        seg_np = np.clip(seg[:, 0].detach().cpu().numpy().astype(np.int16), 0, None)  # nnU-Net pads with -1
        return pick_targets(
            seg_np, self.prompt_rng, exclude_labels=self.heldout_label_ids, lesion_label=self.lesion_label_id
        )

    def _module(self) -> nn.Module:
        """The bare SegAnyPETNet (without DDP / torch.compile wrappers)."""
        mod = self.network.module if self.is_ddp else self.network
        return mod._orig_mod if isinstance(mod, OptimizedModule) else mod

    def _backward_and_step(self, loss: torch.Tensor) -> None:
        """nnU-Net's backward / clip / step (GradScaler on cuda only), plus the DDP gradient average."""
        params = list(self.network.parameters())
        if self.grad_scaler is not None:
            self.grad_scaler.scale(loss).backward()
            self._all_reduce_gradients(params)
            self.grad_scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(params, self.grad_clip)
            self.grad_scaler.step(self.optimizer)
            self.grad_scaler.update()
        else:
            loss.backward()
            self._all_reduce_gradients(params)
            torch.nn.utils.clip_grad_norm_(params, self.grad_clip)
            self.optimizer.step()

    def _all_reduce_gradients(self, params: list[nn.Parameter]) -> None:
        """Averages gradients over DDP ranks (one flat all-reduce); no-op outside DDP."""
        if not self.is_ddp:
            return
        grads = [p.grad for p in params if p.grad is not None]
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat)
        flat /= dist.get_world_size()
        offset = 0
        for g in grads:
            g.copy_(flat[offset : offset + g.numel()].view_as(g))
            offset += g.numel()
