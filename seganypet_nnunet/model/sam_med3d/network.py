"""SamMed3DNet: the released SAM-Med3D / SegAnyPET ``vit_b_ori`` network behind our ``encode`` / ``decode`` contract.

Its state_dict matches the released checkpoints key for key and shape for shape (324 keys: 189 ``image_encoder.``,
15 ``prompt_encoder.``, 120 ``mask_decoder.``; 100,509,232 parameters + the (3, 128) positional-encoding buffer).
It is named by dotted path in the plans (``SamMed3DPlanner``), so nnU-Net builds it from the plans and the session,
``seganypet_predict --prompts``, ``seganypet_evaluate`` and the trainer run it unchanged.

What happens inside (so nnU-Net's world/voxel coordinates keep working as for ``SegAnyPETNet``):

1. **Normalisation, per crop**: each sample of the (B, 1, X, Y, Z) input is z-scored with the mean and unbiased std
   of its voxels > 0, applied to the whole crop (voxels <= 0 and zero padding become ``-mean/std``), exactly as
   torchio's ``ZNormalization(masking_method=x > 0)`` normalises SAM-Med3D / SegAnyPET crops (``zscore_crop``).
   nnU-Net's own normalisation is planned as ``NoNormalization``. The session centres the first crop on the first
   click and zero-pads where it leaves the image, before this normalisation (``centred_crops``).
2. **Axis order**: nnU-Net hands (z, y, x) array-order patches; the weights were trained on (x, y, z) tensors
   (SimpleITK index order). With ``reverse_axes`` (default) the spatial axes of the input, of the point coordinates
   and of the previous mask are reversed before the weights see them, and the output logits are reversed back.
3. **Decoder**: points + previous low-res logits -> 32^3 low-res logits, upsampled trilinearly to the 128^3 patch.

The model is prompt-only: ``forward(x)`` raises (there is no automatic head). Box prompts raise (the released weights
have no box embedding).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from seganypet_nnunet.model.sam_med3d.image_encoder import ImageEncoderViT3D
from seganypet_nnunet.model.sam_med3d.mask_decoder import MaskDecoder3D
from seganypet_nnunet.model.sam_med3d.prompt_encoder import PromptEncoder3D
from seganypet_nnunet.prompts.types import Prompts

RECENT_LOWRES = 4  # low-res outputs remembered per embedding (exact feedback of the previous mask)
PROMPT_ONLY_MESSAGE = (
    "SamMed3DNet (released SAM-Med3D / SegAnyPET weights) is prompt-only: it has no automatic segmentation head, so "
    "forward(x), stock nnUNetv2_predict and seganypet_predict without --prompts cannot run it; give clicks "
    "(SegAnyPETSession, seganypet_predict --prompts, seganypet_evaluate)"
)


@dataclass(frozen=True)
class SamMed3DConfig:
    """Architecture of ``vit_b_ori`` (the released SAM-Med3D-turbo / SegAnyPET checkpoints) plus our wrapper options.

    Attributes:
        img_size: crop edge in voxels (128; ``pos_embed`` fixes the 8^3 token grid, so no other size runs).
        patch_size / embed_dim / depth / num_heads / mlp_ratio / window_size / global_attn_indexes: ViT-B encoder.
        prompt_embed_dim: prompt / decoder width (384 = neck output).
        mask_in_chans / num_multimask_outputs / iou_head_depth / iou_head_hidden_dim: prompt encoder and decoder.
        reverse_axes: reverse the spatial axes (nnU-Net (z, y, x) -> weights' (x, y, z)); see module docstring.
        max_points: most clicks passed to the decoder at once (the session keeps the newest).
    """

    img_size: int = 128
    patch_size: int = 16
    embed_dim: int = 768
    depth: int = 12
    num_heads: int = 12
    mlp_ratio: float = 4.0
    window_size: int = 14
    global_attn_indexes: tuple[int, ...] = (2, 5, 8, 11)
    prompt_embed_dim: int = 384
    mask_in_chans: int = 16
    num_multimask_outputs: int = 3
    iou_head_depth: int = 3
    iou_head_hidden_dim: int = 256
    reverse_axes: bool = True
    max_points: int = 64

    @classmethod
    def from_dict(cls, d: dict) -> SamMed3DConfig:
        """From ``dataclasses.asdict`` output (plans JSON); KeyError names unknown fields."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise KeyError(f"SamMed3DConfig: unknown field(s) {unknown}")
        d = dict(d)
        if "global_attn_indexes" in d:
            d["global_attn_indexes"] = tuple(d["global_attn_indexes"])
        return cls(**d)


@dataclass
class SamMed3DEmbedding:
    """``encode`` output, reused by every click on the crop.

    Attributes:
        image_embeddings: (B, 384, 8, 8, 8) float, weights' axis order.
        image_pe: (1, 384, 8, 8, 8) float dense positional encoding.
        patch_shape: spatial shape of the network input (network-input axis order).
        recent: (low-res logits in the weights' axis order, per-sample sum of the full-resolution output) of the
            last few inference decodes; a previous-mask prompt equal to one of those outputs is fed back as its
            exact low-res logits.
    """

    image_embeddings: torch.Tensor
    image_pe: torch.Tensor
    patch_shape: tuple[int, int, int]
    recent: list[tuple[torch.Tensor, torch.Tensor]] = field(default_factory=list)

    @property
    def batch_size(self) -> int:
        return int(self.image_embeddings.shape[0])


def zscore_crop(x: torch.Tensor) -> torch.Tensor:
    """Per sample and channel of (B, C, ...): torchio's ``ZNormalization(masking_method=x > 0)``: mean and unbiased
    std of the voxels > 0, then ``(x - mean) / std`` applied to EVERY voxel (air and zero padding become
    ``-mean / std``), as upstream normalises each 128^3 crop.

    A sample with fewer than 2 positive voxels or zero std is returned unchanged (torchio would raise).
    """
    x = x.float()
    mask = x > 0
    flat, fmask = x.flatten(2), mask.flatten(2)
    n = fmask.sum(-1, keepdim=True).float()
    mean = (flat * fmask).sum(-1, keepdim=True) / n.clamp_min(1)
    var = (((flat - mean) * fmask) ** 2).sum(-1, keepdim=True) / (n - 1).clamp_min(1)
    std = var.sqrt()
    ok = (n >= 2) & (std > 0)
    normed = torch.where(ok, (flat - mean) / torch.where(ok, std, torch.ones_like(std)), flat)
    return normed.view_as(x)


class SamMed3DNet(nn.Module):
    """SAM-Med3D ``vit_b_ori`` composed as image encoder + prompt encoder + mask decoder (module docstring).

    Constructed by nnU-Net from the plans: ``SamMed3DNet(input_channels=1, num_classes=..., deep_supervision=...,
    sam_med3d=asdict(SamMed3DConfig))``. ``num_classes`` is recorded only (one binary mask per target).
    ``prompt_only`` tells callers (automatic prediction) up front that ``forward`` raises.
    """

    prompt_only = True
    #: the session centres the first crop on the click and zero-pads outside the image (upstream's CropOrPad)
    centred_crops = True

    def __init__(
        self,
        input_channels: int = 1,
        num_classes: int = 2,
        deep_supervision: bool = False,
        *,
        sam_med3d: dict | SamMed3DConfig | None = None,
    ) -> None:
        super().__init__()
        cfg = sam_med3d if isinstance(sam_med3d, SamMed3DConfig) else SamMed3DConfig.from_dict(sam_med3d or {})
        if input_channels != 1:
            raise ValueError(
                f"SamMed3DNet takes one PET channel, the dataset has {input_channels} input channels "
                "(dataset.json channel_names)"
            )
        self.config = cfg
        self.num_classes = num_classes
        grid = cfg.img_size // cfg.patch_size
        self.image_encoder = ImageEncoderViT3D(
            img_size=cfg.img_size,
            patch_size=cfg.patch_size,
            in_chans=1,
            embed_dim=cfg.embed_dim,
            depth=cfg.depth,
            num_heads=cfg.num_heads,
            mlp_ratio=cfg.mlp_ratio,
            out_chans=cfg.prompt_embed_dim,
            window_size=cfg.window_size,
            global_attn_indexes=cfg.global_attn_indexes,
        )
        self.prompt_encoder = PromptEncoder3D(
            embed_dim=cfg.prompt_embed_dim, grid=grid, img_size=cfg.img_size, mask_in_chans=cfg.mask_in_chans
        )
        self.mask_decoder = MaskDecoder3D(
            embed_dim=cfg.prompt_embed_dim,
            num_multimask_outputs=cfg.num_multimask_outputs,
            iou_head_depth=cfg.iou_head_depth,
            iou_head_hidden_dim=cfg.iou_head_hidden_dim,
        )

    @property
    def decoder(self) -> nn.Module:
        """What nnU-Net's trainer toggles ``.deep_supervision`` on (this network has no deep supervision)."""
        return self.mask_decoder

    @property
    def patch_shape(self) -> tuple[int, int, int]:
        return (self.config.img_size,) * 3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Always raises: the released model has no automatic head (prompt-only)."""
        raise RuntimeError(PROMPT_ONLY_MESSAGE)

    # ---------------------------------------------------------------------------------------------- axis order
    def to_weights_order(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, a, b, c) network-input axis order -> weights' order (spatial axes reversed if ``reverse_axes``)."""
        return x.permute(0, 1, 4, 3, 2) if self.config.reverse_axes else x

    to_input_order = to_weights_order  # reversing is its own inverse

    def points_to_weights_order(self, points: torch.Tensor) -> torch.Tensor:
        """(B, N, 3) network-input voxel coordinates -> weights' axis order."""
        return points.flip(-1) if self.config.reverse_axes else points

    # ------------------------------------------------------------------------------------------------ contract
    def encode(self, x: torch.Tensor) -> SamMed3DEmbedding:
        """Normalises each crop and runs the ViT once.

        Args:
            x: (B, 1, X, Y, Z) float patch, nnU-Net-preprocessed with ``NoNormalization`` (network-input voxels);
                spatial shape must be ``img_size``^3.

        Returns:
            SamMed3DEmbedding.
        """
        self._check_input(x)
        emb = self.image_encoder(self.to_weights_order(zscore_crop(x)))
        pe = self.prompt_encoder.get_dense_pe().to(emb.dtype)
        return SamMed3DEmbedding(emb, pe, tuple(int(s) for s in x.shape[2:]))

    def decode(
        self, embedding: SamMed3DEmbedding, prompts: Prompts, multimask: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-click path: points + previous mask logits -> mask logits at full patch resolution.

        Args:
            embedding: from ``encode``; batch 1 is broadcast to the prompts' batch.
            prompts: points in network-input voxel space; ``mask`` (full-resolution logits, network-input order) is
                fed back as 32^3 low-res logits (exactly, when it is one of this embedding's recent outputs; else
                trilinearly resampled); samples without a mask get zeros (upstream's inference convention).
            multimask: return the 3 multimask outputs.

        Returns:
            (mask logits (B, M, X, Y, Z) float, network-input order; iou (B, M)), M = 1 unless multimask.
        """
        b = prompts.batch_size() or embedding.batch_size
        if embedding.batch_size not in (1, b):
            raise ValueError(f"prompts have batch {b} but the embedding has batch {embedding.batch_size}")
        prompts.validate(b, embedding.patch_shape, self.config.max_points)
        if prompts.boxes is not None and (prompts.box_mask is None or bool(prompts.box_mask.any())):
            raise ValueError("SamMed3DNet: box prompts are not supported by the released SAM-Med3D weights; use clicks")
        device = embedding.image_embeddings.device
        points = labels = None
        if prompts.points is not None and prompts.points.shape[1] > 0:
            points = self.points_to_weights_order(prompts.points.to(device))
            labels = prompts.point_labels.to(device)
        lowres = self.lowres_prompt(embedding, prompts.mask, prompts.mask_present, b)
        low, iou = self.decode_lowres(embedding, points, labels, lowres, multimask)
        full = self.upsample(low)
        if not multimask and not torch.is_grad_enabled():
            embedding.recent = [(low, full.double().sum(dim=(1, 2, 3, 4)))] + embedding.recent[: RECENT_LOWRES - 1]
        return full, iou

    def upsample(self, low: torch.Tensor) -> torch.Tensor:
        """(B, M, 32, 32, 32) low-res logits (weights' order) -> (B, M, *patch) trilinear, network-input order."""
        full = F.interpolate(low, size=(self.config.img_size,) * 3, mode="trilinear", align_corners=False)
        return self.to_input_order(full)

    def decode_lowres(
        self,
        embedding: SamMed3DEmbedding,
        points: torch.Tensor | None,
        labels: torch.Tensor | None,
        lowres_mask: torch.Tensor,
        multimask: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """SAM-Med3D's own call sequence (prompt encoder -> mask decoder), everything in the weights' axis order.

        Args:
            points: (B, N, 3) float voxel coordinates or None; labels: (B, N) int64 (1, 0, -1).
            lowres_mask: (B, 1, 32, 32, 32) previous low-res logits (zeros for none).

        Returns:
            low-res logits (B, M, 32, 32, 32), iou (B, M).
        """
        b = lowres_mask.shape[0]
        sparse, dense = self.prompt_encoder(points, labels, lowres_mask, b)
        emb = embedding.image_embeddings
        return self.mask_decoder(emb, embedding.image_pe, sparse.to(emb.dtype), dense.to(emb.dtype), multimask)

    def lowres_prompt(
        self, embedding: SamMed3DEmbedding, mask: torch.Tensor | None, present: torch.Tensor | None, batch: int
    ) -> torch.Tensor:
        """(B, 1, 32, 32, 32) low-res previous logits (weights' order) from a full-resolution mask prompt."""
        device = embedding.image_embeddings.device
        shape = self.prompt_encoder.mask_shape
        if mask is None:
            return torch.zeros((batch, 1, *shape), device=device)
        if present is not None and not bool(present.any()):
            return torch.zeros((batch, 1, *shape), device=device)
        mask = mask.to(device).float()
        sums = mask.double().sum(dim=(1, 2, 3, 4))
        for low, full_sums in embedding.recent:  # cheap sum check first, then the exact comparison
            if low.shape[0] == mask.shape[0] and torch.equal(sums, full_sums) and torch.equal(self.upsample(low), mask):
                out = low
                break
        else:
            out = F.interpolate(self.to_weights_order(mask), size=shape, mode="trilinear", align_corners=False)
        if present is not None:
            out = out * present.to(device).view(-1, 1, 1, 1, 1).to(out.dtype)
        return out

    def _check_input(self, x: torch.Tensor) -> None:
        want = self.patch_shape
        if x.ndim != 5 or x.shape[1] != 1 or tuple(x.shape[2:]) != want:
            raise ValueError(
                f"SamMed3DNet expects (B, 1, {want[0]}, {want[1]}, {want[2]}) input (the released weights fix a "
                f"{want[0]}^3 crop), got {tuple(x.shape)}"
            )

    def prompt_grid_shape(self, patch_size: Sequence[int]) -> tuple[int, int, int]:
        """Token grid (8, 8, 8); ValueError for any patch other than ``img_size``^3."""
        if tuple(int(p) for p in patch_size) != self.patch_shape:
            raise ValueError(f"SamMed3DNet runs on {self.patch_shape} patches only, got {tuple(patch_size)}")
        g = self.config.img_size // self.config.patch_size
        return (g, g, g)

    def compute_conv_feature_map_size(self, patch_size: Sequence[int]) -> int:
        """Rough activation count for nnU-Net's planner (it never shrinks this patch)."""
        n_tok = 14**3
        return int(n_tok * self.config.embed_dim * 8 * self.config.depth + 4 * self.config.img_size**3)


def sam_med3d_architecture(config: SamMed3DConfig | None = None) -> dict:
    """The plans ``architecture`` entry naming ``SamMed3DNet`` by dotted path (JSON-serialisable)."""
    cfg = config or SamMed3DConfig()
    d = dataclasses.asdict(cfg)
    d["global_attn_indexes"] = list(d["global_attn_indexes"])
    return {
        "network_class_name": f"{SamMed3DNet.__module__}.{SamMed3DNet.__qualname__}",
        "arch_kwargs": {"sam_med3d": d},
        "_kw_requires_import": [],
    }
