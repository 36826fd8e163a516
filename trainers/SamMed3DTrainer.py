"""SamMed3DTrainer: fine-tunes the released SAM-Med3D / SegAnyPET weights (``SamMed3DNet``) inside nnU-Net.

Start from a released file with ``seganypet_train ID 3d_fullres FOLD -tr SamMed3DTrainer -p SamMed3DPlans
-pretrained_weights seganypet_v2.pth`` (raw state_dict or ``{"model_state_dict": ...}``, loaded strictly). Checkpoints
stay in nnU-Net's results layout (``trainer_name`` "nnUNetTrainer", DESIGN.md) and ``--c`` resumes.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from nnunetv2.utilities.helpers import dummy_context
from torch import nn
from torch._dynamo import OptimizedModule

from seganypet_nnunet.trainers.base import CUDA, SeganypetBaseTrainer
from seganypet_nnunet.trainers.prompt_training import pick_targets


def _plain(value):
    """numpy scalars / arrays (also inside lists) -> Python floats / lists, so ``weights_only`` loading works."""
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (np.generic, np.ndarray)):
        return value.tolist()
    return value


class MultiStepGroupLR:
    """SAM-Med3D's step decay (x ``gamma`` at each milestone epoch) that keeps each group's own base lr.

    nnU-Net calls ``step(current_epoch)`` at every epoch start; ``group["base_lr"]`` is saved with the optimizer
    state, so ``--c`` continues the schedule.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, milestones: list[int], gamma: float = 0.1) -> None:
        self.optimizer, self.milestones, self.gamma = optimizer, sorted(milestones), gamma

    def step(self, epoch: int) -> None:
        factor = self.gamma ** sum(epoch >= m for m in self.milestones)
        for group in self.optimizer.param_groups:
            group["lr"] = group["base_lr"] * factor

    def state_dict(self) -> dict:
        return {"milestones": self.milestones, "gamma": self.gamma}

    def load_state_dict(self, state: dict) -> None:
        self.milestones, self.gamma = list(state["milestones"]), float(state["gamma"])


def dice_ce_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    weight: torch.Tensor,
    smooth: float = 1e-5,
    *,
    voxel_weight: torch.Tensor | None = None,
):
    """SAM-Med3D's loss (MONAI ``DiceCELoss(sigmoid=True, squared_pred=True)``): soft Dice with squared terms + BCE.

    Args:
        logits: (B, 1, X, Y, Z); target: (B, 1, X, Y, Z) {0, 1}; weight: (B,) 0 for samples without a target.
        voxel_weight: optional (B, 1, X, Y, Z) per-voxel weights (CPCL); None is all ones.
    """
    lg, tg = logits.float().flatten(1), target.float().flatten(1)
    w = torch.ones_like(tg) if voxel_weight is None else voxel_weight.float().flatten(1)
    p = torch.sigmoid(lg)
    dice = 1 - (2 * (w * p * tg).sum(1) + smooth) / ((w * p * p).sum(1) + (w * tg * tg).sum(1) + smooth)
    bce = F.binary_cross_entropy_with_logits(lg, tg, reduction="none")
    bce = (w * bce).sum(1) / w.sum(1).clamp_min(1e-8)
    return ((dice + bce) * weight).sum() / weight.sum().clamp_min(1)


def error_region_clicks(
    pred: np.ndarray, target: np.ndarray, valid: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """SAM-Med3D's click: one voxel drawn uniformly from FN u FP per sample (positive if it is a FN voxel).

    Args:
        pred / target: (B, X, Y, Z) bool, network-input voxels. valid: (B,) bool.

    Returns:
        points (B, 1, 3) float network-input voxel coordinates; labels (B, 1) int64, -1 (padding) where a sample
        has no target or no error.
    """
    points = np.zeros((pred.shape[0], 1, 3), np.float32)
    labels = np.full((pred.shape[0], 1), -1, np.int64)
    for b in np.flatnonzero(valid):
        error = np.flatnonzero(pred[b] != target[b])
        if error.size:
            idx = np.unravel_index(error[int(rng.integers(error.size))], pred.shape[1:])
            points[b, 0], labels[b, 0] = idx, int(target[b][idx])
    return points, labels


class SamMed3DTrainer(SeganypetBaseTrainer):
    """Fine-tuning with SAM-Med3D's recipe on nnU-Net's data loaders.

    Per step: the image encoder runs once per 128^3 patch (nnU-Net samples patches around a foreground voxel,
    ``oversample_foreground_percent = 1``); one target per sample (organ class or lesion instance, ``pick_targets``);
    then ``num_click_iterations`` decoder passes: the first click is a random voxel of the target, each next click a
    random voxel of the current error region (FN u FP; positive in FN), the previous low-res logits are fed back
    (detached), and one random iteration in [2, n-2] plus the last one are mask-only (no point), as upstream. Only
    the newest click is passed (upstream ``train.py``). Loss: Dice (squared) + BCE summed over iterations.

    Optimiser: AdamW (weight decay 0.1) with two lr groups, image encoder ``initial_lr`` and prompt encoder + mask
    decoder ``initial_lr * head_lr_scale`` (SegAnyPET's code); step decay x0.1 at ``lr_milestones`` (fractions of
    ``num_epochs``). ``freeze_encoder`` keeps the encoder fixed (no gradient, not in the optimiser).

    Validation: the prompted Dice after the click loop (nnU-Net's pseudo-Dice bookkeeping); the model is prompt-only,
    so nnU-Net's sliding-window ``perform_actual_validation`` is replaced by a log line (use ``seganypet_evaluate``).

    Attributes:
        num_click_iterations: decoder passes per step (SAM-Med3D: 11).
        head_lr_scale / lr_milestones / freeze_encoder / grad_clip / lesion_label_name: see above.
    """

    num_click_iterations: int = 11
    head_lr_scale: float = 0.1
    lr_milestones: tuple[float, ...] = (0.6, 0.9)
    freeze_encoder: bool = False
    grad_clip: float = 12.0
    lesion_label_name: str = "lesion"

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict, device: torch.device = CUDA):
        super().__init__(plans, configuration, fold, dataset_json, device)
        if self.is_ddp:  # encode/decode bypass DistributedDataParallel.forward: gradients would not be averaged
            raise NotImplementedError(f"{type(self).__name__}: DDP (multi-GPU) is unsupported; use -num_gpus 1")
        self.enable_deep_supervision = False
        self.initial_lr = 8e-5
        self.weight_decay = 0.1
        self.oversample_foreground_percent = 1.0
        for name, value in self.budget.items():  # a budget may override the defaults above
            setattr(self, name, value)
        lesion = self.dataset_json["labels"].get(self.lesion_label_name)
        self.lesion_label_id = None if lesion is None else int(lesion)
        self.prompt_rng = np.random.default_rng()

    def configure_optimizers(self):
        """AdamW, two lr groups (encoder / prompt encoder + decoder), SAM-Med3D's step decay."""
        net = self._module()
        for p in net.image_encoder.parameters():
            p.requires_grad_(not self.freeze_encoder)
        head = [p for n, p in net.named_parameters() if not n.startswith("image_encoder.")]
        groups = [{"params": head, "base_lr": self.initial_lr * self.head_lr_scale, "name": "prompt+decoder"}]
        if not self.freeze_encoder:
            groups.insert(0, {"params": list(net.image_encoder.parameters()), "base_lr": self.initial_lr})
        for g in groups:
            g["lr"] = g["base_lr"]
        optimizer = torch.optim.AdamW(groups, lr=self.initial_lr, betas=(0.9, 0.999), weight_decay=self.weight_decay)
        milestones = [max(1, round(f * self.num_epochs)) for f in self.lr_milestones]
        return optimizer, MultiStepGroupLR(optimizer, milestones)

    def train_step(self, batch: dict) -> dict:
        self.optimizer.zero_grad(set_to_none=True)
        loss, _ = self._click_loop(batch, train=True)
        if self.grad_scaler is not None:
            self.grad_scaler.scale(loss).backward()
            self.grad_scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self._trainable(), self.grad_clip)
            self.grad_scaler.step(self.optimizer)
            self.grad_scaler.update()
        else:
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self._trainable(), self.grad_clip)
            self.optimizer.step()
        return {"loss": loss.detach().cpu().numpy()}

    def validation_step(self, batch: dict) -> dict:
        """Prompted pseudo-Dice of the last iteration, as one 'class' in nnU-Net's tp/fp/fn bookkeeping."""
        with torch.no_grad():
            loss, (pred, target, valid) = self._click_loop(batch, train=False)
        v = valid[:, None, None, None]
        tp, fp, fn = ((pred & target & v).sum(), (pred & ~target & v).sum(), (~pred & target & v).sum())
        return {
            "loss": loss.cpu().numpy(),
            "tp_hard": np.array([tp]),
            "fp_hard": np.array([fp]),
            "fn_hard": np.array([fn]),
        }

    def perform_actual_validation(self, save_probabilities: bool = False) -> None:
        """The model is prompt-only: no automatic sliding-window validation (run ``seganypet_evaluate``)."""
        self.print_to_log_file(
            "SamMed3DTrainer: prompt-only model, nnU-Net's automatic validation skipped; evaluate with "
            "seganypet_evaluate --protocol sam_med3d (or ours)"
        )

    def save_checkpoint(self, filename: str) -> None:
        """As the base, with nnU-Net's numpy log scalars made plain floats (``load_checkpoint`` reads it safely)."""
        log = getattr(self.logger, "local_logger", self.logger).my_fantastic_logging  # nnU-Net 2.8: MetaLogger
        for key in log:
            log[key] = _plain(log[key])
        self._best_ema = _plain(self._best_ema)
        super().save_checkpoint(filename)

    # ------------------------------------------------------------------------------------------------ internals
    def _click_loop(self, batch: dict, train: bool) -> tuple[torch.Tensor, tuple]:
        net, rng = self._module(), self.prompt_rng
        data = batch["data"].to(self.device, non_blocking=True)
        seg = batch["target"][0] if isinstance(batch["target"], list) else batch["target"]
        seg_np = np.clip(seg[:, 0].numpy().astype(np.int16), 0, None)  # nnU-Net pads with -1
        masks, valid = pick_targets(seg_np, rng, exclude_labels=(), lesion_label=self.lesion_label_id)
        target = torch.as_tensor(masks, device=self.device).unsqueeze(1)
        weight = torch.as_tensor(valid, dtype=torch.float32, device=self.device)
        n = self.num_click_iterations
        mask_only = {int(rng.integers(2, n - 1)), n - 1} if n > 3 else {n - 1} if n > 1 else set()
        with self.amp_context():
            with torch.no_grad() if (self.freeze_encoder or not train) else dummy_context():
                embedding = net.encode(data)
            voxel_weight = None
            if train:
                target, voxel_weight = self.loss_targets(embedding, masks, valid, batch, target)
            low = torch.zeros((data.shape[0], 1, *net.prompt_encoder.mask_shape), device=self.device)
            pred = np.zeros(masks.shape, bool)
            loss = torch.zeros((), device=self.device)
            for i in range(n):
                points = labels = None
                if i not in mask_only:
                    pts, labs = error_region_clicks(pred, masks, valid, rng)
                    points = net.points_to_weights_order(torch.as_tensor(pts, device=self.device))
                    labels = torch.as_tensor(labs, device=self.device)
                low, _ = net.decode_lowres(embedding, points, labels, low)
                full = net.upsample(low)
                loss = loss + dice_ce_loss(full, target, weight, voxel_weight=voxel_weight)
                low = low.detach().float()
                pred = (full.detach() > 0)[:, 0].cpu().numpy()
        return loss, (pred, masks, valid)

    def loss_targets(
        self, embedding, masks: np.ndarray, valid: np.ndarray, batch: dict, target: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Training target (B, 1, X, Y, Z) and per-voxel loss weights (None: all ones) of a step (hook: CPCL)."""
        return target, None

    def _module(self) -> nn.Module:
        mod = self.network.module if self.is_ddp else self.network
        return mod._orig_mod if isinstance(mod, OptimizedModule) else mod

    def _trainable(self) -> list[nn.Parameter]:
        return [p for p in self.network.parameters() if p.requires_grad]


class SamMed3DTrainer_frozenEncoder(SamMed3DTrainer):
    """Only the prompt encoder and mask decoder learn (the ViT is ~93 % of the weights and of the cost)."""

    freeze_encoder = True


class SamMed3DTrainer_tiny(SamMed3DTrainer_frozenEncoder):
    """Tests on CPU: frozen encoder, 3 decoder passes, 2 epochs x 1 iteration, checkpoint every epoch."""

    num_click_iterations = 3
    budget = {"num_epochs": 2, "num_iterations_per_epoch": 1, "num_val_iterations_per_epoch": 1, "save_every": 1}
