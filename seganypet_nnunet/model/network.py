"""SegAnyPETNet: nnU-Net-planned U-Net backbone + SAM-style prompt encoder and mask decoder (composition root)."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from dynamic_network_architectures.initialization.weight_init import InitWeights_He, init_last_bn_before_add_to_0
from torch import nn

from seganypet_nnunet.model.click_encoder import NUM_CLICK_MAPS, ClickEncoder, sample_at_points
from seganypet_nnunet.model.config import PromptableConfig, get_model_config
from seganypet_nnunet.model.image_encoder import UNetImageEncoder
from seganypet_nnunet.model.mask_decoder import MaskDecoder3D
from seganypet_nnunet.model.prompt_encoder import PromptEncoder3D
from seganypet_nnunet.model.transformer import TwoWayTransformer
from seganypet_nnunet.prompts.types import Prompts

REQUIRES_IMPORT = ["conv_op", "norm_op", "dropout_op", "nonlin"]


@dataclass
class ImageEmbedding:
    """Prompt-independent results of one backbone pass (``SegAnyPETNet.encode``), reused by every click.

    Attributes:
        image_tokens: (B, embed_dim, *grid) float image tokens on the token grid.
        image_pe: (1, embed_dim, *grid) float dense positional encoding.
        highres_map: (B, mask_channels, *hr_grid) float cached high-resolution map (grid = patch / mask stride).
        auto_logits: (B, num_classes, *patch) float automatic (nnU-Net head) logits at full patch resolution.
        auto_output: exactly what ``forward(x)`` returns for the current ``decoder.deep_supervision`` setting
            (list of logits finest first, or one tensor) -- feed it to nnU-Net's loss.
        patch_shape: (P0, P1, P2) spatial shape of the network input.
        highres_unit: ``highres_map`` normalised to unit length over channels (the click encoder's feature
            similarity), computed once here because it costs about a quarter of a click at 128^3; None without
            click maps.
    """

    image_tokens: torch.Tensor
    image_pe: torch.Tensor
    highres_map: torch.Tensor
    auto_logits: torch.Tensor
    auto_output: torch.Tensor | list[torch.Tensor]
    patch_shape: tuple[int, int, int]
    highres_unit: torch.Tensor | None = None

    @property
    def batch_size(self) -> int:
        return int(self.image_tokens.shape[0])


class SegAnyPETNet(nn.Module):
    """Promptable 3D segmentation network built from nnU-Net plans (see docs/DESIGN.md, Network contract).

    ``forward(x)`` is the automatic nnU-Net path; ``encode`` / ``decode`` is the promptable path. All spatial
    tensors are (B, C, P0, P1, P2) in network-input voxel space: nnU-Net's preprocessed axes (array axes permuted by
    the plans' ``transpose_forward``, docs/DESIGN.md), not ITK's (x, y, z).
    """

    def __init__(
        self,
        input_channels: int,
        num_classes: int,
        deep_supervision: bool = False,
        *,
        backbone_class: str | type,
        promptable: dict | PromptableConfig,
        input_transforms: Sequence[str],
        **backbone_kwargs,
    ) -> None:
        super().__init__()
        cfg = promptable if isinstance(promptable, PromptableConfig) else PromptableConfig.from_dict(promptable)
        self.config = cfg
        self.num_classes = num_classes
        self.image_encoder = UNetImageEncoder(
            backbone_class=backbone_class,
            input_channels=input_channels,
            num_classes=num_classes,
            deep_supervision=deep_supervision,
            backbone_kwargs=backbone_kwargs,
            input_transforms=input_transforms,
        )
        enc = self.image_encoder
        self.token_level = enc.select_level(cfg.token_stride)
        self.mask_level = min(enc.select_level(cfg.mask_stride), self.token_level)
        self.token_stride = enc.level_strides[self.token_level]
        self.mask_stride = enc.level_strides[self.mask_level]
        self.token_proj = nn.Sequential(
            nn.Conv3d(enc.level_channels[self.token_level], cfg.embed_dim, kernel_size=1),
            nn.GELU(),
            nn.Conv3d(cfg.embed_dim, cfg.embed_dim, kernel_size=1),
        )
        self.highres_proj = nn.Conv3d(enc.level_channels[self.mask_level], cfg.mask_channels, kernel_size=1)
        self.prompt_encoder = PromptEncoder3D(
            embed_dim=cfg.embed_dim,
            token_stride=self.token_stride,
            mask_in_chans=cfg.mask_in_chans,
            pe_scale=cfg.pe_scale,
            point_features=cfg.point_features,
        )
        transformer = TwoWayTransformer(
            depth=cfg.depth,
            embed_dim=cfg.embed_dim,
            num_heads=cfg.num_heads,
            mlp_dim=cfg.mlp_dim,
            attention_downsample=cfg.attention_downsample,
        )
        self.mask_decoder = MaskDecoder3D(
            embed_dim=cfg.embed_dim,
            transformer=transformer,
            mask_channels=cfg.mask_channels,
            num_multimask_outputs=cfg.num_multimask_outputs,
            iou_head_depth=cfg.iou_head_depth,
            iou_head_hidden_dim=cfg.iou_head_hidden_dim,
            num_click_maps=NUM_CLICK_MAPS if cfg.click_maps else 0,
        )
        self.click_encoder = ClickEncoder(sigma=cfg.click_sigma) if cfg.click_maps else None

    @property
    def decoder(self) -> nn.Module:
        """The backbone's dna UNetDecoder; nnU-Net sets ``net.decoder.deep_supervision``."""
        return self.image_encoder.decoder

    # ----------------------------------------------------------------------------------------------- automatic
    def forward(self, x: torch.Tensor) -> torch.Tensor | list[torch.Tensor]:
        """Automatic segmentation, no prompts.

        Args:
            x: (B, C_in, P0, P1, P2) float, nnU-Net-preprocessed patch.

        Returns:
            list of (B, num_classes, *scale_shape) logits finest first if ``decoder.deep_supervision``, else one
            (B, num_classes, P0, P1, P2) tensor -- exactly like PlainConvUNet.
        """
        self._check_input(x)
        return self.image_encoder(x)[0]

    # ---------------------------------------------------------------------------------------------- promptable
    def prompt_grid_shape(self, patch_size: Sequence[int]) -> tuple[int, int, int]:
        """Token grid for a patch (network-input axis order); ValueError if the patch does not fit the backbone."""
        patch = tuple(int(p) for p in patch_size)
        total = self.image_encoder.level_strides[-1]
        if len(patch) != 3 or any(p % t for p, t in zip(patch, total, strict=True)):
            raise ValueError(f"patch size {patch} must be 3D and divisible by the backbone's total stride {total}")
        return tuple(p // t for p, t in zip(patch, self.token_stride, strict=True))

    def encode(self, x: torch.Tensor) -> ImageEmbedding:
        """Runs the backbone once; returns automatic outputs and the cached prompt-independent maps.

        Args:
            x: (B, C_in, P0, P1, P2) float, nnU-Net-preprocessed patch (network-input voxels).

        Returns:
            ImageEmbedding; ``auto_output`` honours ``decoder.deep_supervision`` so the trainer can compute the
            nnU-Net loss and the prompted loss from one backbone pass.
        """
        grid = self._check_input(x)
        seg, levels = self.image_encoder(x)
        tokens = self.token_proj(levels[self.token_level])
        pe = self.prompt_encoder.get_dense_pe(grid, tokens.device, tokens.dtype)
        auto_logits = seg[0] if isinstance(seg, (list, tuple)) else seg
        highres = self.highres_proj(levels[self.mask_level])
        return ImageEmbedding(
            image_tokens=tokens,
            image_pe=pe,
            highres_map=highres,
            auto_logits=auto_logits,
            auto_output=seg,
            patch_shape=tuple(x.shape[2:]),
            highres_unit=F.normalize(highres, dim=1) if self.click_encoder is not None else None,
        )

    def decode(
        self, embedding: ImageEmbedding, prompts: Prompts, multimask: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-click path: prompts + cached embedding -> mask logits.

        Besides SAM's prompt tokens, the image tokens sampled at the clicks are added to the point tokens
        (``config.point_features``) and ``ClickEncoder`` maps (click Gaussians, feature similarity to the clicked
        voxels, previous mask) enter the high-res mask pathway (``config.click_maps``); see click_encoder.py.

        Args:
            embedding: from ``encode``; batch 1 is broadcast to the prompts' batch.
            prompts: coordinates in network-input voxel space (see ``Prompts``).
            multimask: return the ``num_multimask_outputs`` alternative masks instead of the single mask.

        Returns:
            (mask_logits (B, M, P0, P1, P2) float at full patch resolution, iou (B, M) float), M = 1 unless multimask.
        """
        if multimask and self.config.num_multimask_outputs == 0:
            raise ValueError("decode(multimask=True) needs PromptableConfig.num_multimask_outputs > 0")
        b = prompts.batch_size() or embedding.batch_size
        if embedding.batch_size not in (1, b):
            raise ValueError(f"prompts have batch {b} but the embedding has batch {embedding.batch_size}")
        prompts.validate(b, embedding.patch_shape, self.config.max_points)
        grid = tuple(embedding.image_tokens.shape[2:])
        tokens = embedding.image_tokens.expand(b, -1, -1, -1, -1)
        has_points = prompts.points is not None and prompts.points.shape[1] > 0
        point_features = None
        if self.config.point_features and has_points:
            point_features = sample_at_points(tokens, prompts.points, embedding.patch_shape)
        sparse, dense = self.prompt_encoder(
            prompts,
            batch=b,
            patch_shape=embedding.patch_shape,
            grid_shape=grid,
            device=embedding.image_tokens.device,
            point_features=point_features,
        )
        highres = embedding.highres_map.expand(b, -1, -1, -1, -1)
        click_maps = None
        if self.click_encoder is not None:
            click_maps = self.click_encoder(
                points=prompts.points if has_points else None,
                labels=prompts.point_labels,
                highres_unit=embedding.highres_unit.expand(b, -1, -1, -1, -1),
                patch_shape=embedding.patch_shape,
                mask=prompts.mask,
                mask_present=prompts.mask_present,
            )
        return self.mask_decoder(
            image_tokens=tokens,
            image_pe=embedding.image_pe,
            sparse=sparse.to(embedding.image_tokens.dtype),
            dense=dense,
            highres_map=highres,
            patch_shape=embedding.patch_shape,
            multimask=multimask,
            click_maps=click_maps,
        )

    def forward_prompted(
        self, x: torch.Tensor, prompts: Prompts, multimask: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``decode(encode(x), prompts)`` in one call; shapes as in ``decode``."""
        return self.decode(self.encode(x), prompts, multimask)

    # ------------------------------------------------------------------------------------------------- nnU-Net
    def compute_conv_feature_map_size(self, patch_size: Sequence[int]) -> int:
        """Backbone estimate (nnU-Net's) plus a rough count of the promptable part's activations."""
        grid = self.prompt_grid_shape(patch_size)
        cfg = self.config
        n_tok = math.prod(grid)
        hr = math.prod(p // s for p, s in zip(patch_size, self.mask_stride, strict=True))
        extra = n_tok * cfg.embed_dim * (4 + 6 * cfg.depth) + hr * (cfg.mask_channels * 3 + 2 * NUM_CLICK_MAPS)
        extra += 2 * math.prod(patch_size)
        return int(np.int64(self.image_encoder.compute_conv_feature_map_size(patch_size)) + extra)

    @staticmethod
    def initialize(module: nn.Module) -> None:
        """nnU-Net's init (He for convs, zero last norm of residual blocks); applied by ``net.apply``."""
        InitWeights_He(1e-2)(module)
        init_last_bn_before_add_to_0(module)

    def _check_input(self, x: torch.Tensor) -> tuple[int, int, int]:
        if x.ndim != 5:
            raise ValueError(f"SegAnyPETNet expects (B, C, P0, P1, P2) input, got shape {tuple(x.shape)}")
        return self.prompt_grid_shape(x.shape[2:])


def build_arch_kwargs(backbone_arch: dict, promptable: PromptableConfig | str, input_transforms: Sequence[str]) -> dict:
    """Turns nnU-Net's standard plans ``architecture`` dict into ours (JSON-serialisable).

    Args:
        backbone_arch: ``{"network_class_name", "arch_kwargs", "_kw_requires_import"}`` as nnU-Net's planner writes.
        promptable: config or a ``MODEL_CONFIGS`` name.
        input_transforms: one of "log1p_suv" / "identity" per input channel.

    Returns:
        a new architecture dict with ``network_class_name`` = SegAnyPETNet's dotted path.
    """
    cfg = get_model_config(promptable) if isinstance(promptable, str) else promptable
    kwargs = dict(backbone_arch["arch_kwargs"])
    kwargs.update(
        backbone_class=backbone_arch["network_class_name"],
        promptable=dataclasses.asdict(cfg),
        input_transforms=list(input_transforms),
    )
    return {
        "network_class_name": f"{SegAnyPETNet.__module__}.{SegAnyPETNet.__qualname__}",
        "arch_kwargs": kwargs,
        "_kw_requires_import": list(backbone_arch.get("_kw_requires_import", REQUIRES_IMPORT)),
    }


def plain_unet_arch(
    *,
    features_per_stage: Sequence[int],
    strides: Sequence[Sequence[int]],
    n_conv_per_stage: int = 2,
    backbone_class: str = "dynamic_network_architectures.architectures.unet.PlainConvUNet",
) -> dict:
    """A nnU-Net-style 3D PlainConvUNet ``architecture`` dict (dotted strings), as the default planner writes it."""
    n = len(features_per_stage)
    return {
        "network_class_name": backbone_class,
        "arch_kwargs": {
            "n_stages": n,
            "features_per_stage": list(features_per_stage),
            "conv_op": "torch.nn.modules.conv.Conv3d",
            "kernel_sizes": [[3, 3, 3]] * n,
            "strides": [list(s) for s in strides],
            "n_conv_per_stage": [n_conv_per_stage] * n,
            "n_conv_per_stage_decoder": [n_conv_per_stage] * (n - 1),
            "conv_bias": True,
            "norm_op": "torch.nn.modules.instancenorm.InstanceNorm3d",
            "norm_op_kwargs": {"eps": 1e-05, "affine": True},
            "dropout_op": None,
            "dropout_op_kwargs": None,
            "nonlin": "torch.nn.LeakyReLU",
            "nonlin_kwargs": {"inplace": True},
        },
        "_kw_requires_import": list(REQUIRES_IMPORT),
    }


def build_network_from_arch(
    arch: dict, *, input_channels: int, num_classes: int, deep_supervision: bool = True
) -> SegAnyPETNet:
    """Builds through nnU-Net's own ``get_network_from_plans`` (resolves dotted strings, applies ``initialize``)."""
    from nnunetv2.utilities.get_network_from_plans import get_network_from_plans

    return get_network_from_plans(
        arch["network_class_name"],
        arch["arch_kwargs"],
        arch["_kw_requires_import"],
        input_channels,
        num_classes,
        allow_init=True,
        deep_supervision=deep_supervision,
    )


def build_tiny_network(
    input_channels: int = 1,
    num_classes: int = 12,
    patch_size: Sequence[int] = (32, 32, 32),
    deep_supervision: bool = True,
    config: str | PromptableConfig = "tiny",
) -> SegAnyPETNet:
    """A 4-stage, 8->32-feature network for tests; ``patch_size`` must be divisible by 8."""
    if any(int(p) % 8 for p in patch_size):
        raise ValueError(f"build_tiny_network: patch_size {tuple(patch_size)} must be divisible by 8")
    arch = plain_unet_arch(
        features_per_stage=[8, 16, 24, 32], strides=[[1, 1, 1]] + [[2, 2, 2]] * 3, n_conv_per_stage=1
    )
    transforms = ["log1p_suv"] + ["identity"] * (input_channels - 1)
    return build_network_from_arch(
        build_arch_kwargs(arch, config, transforms),
        input_channels=input_channels,
        num_classes=num_classes,
        deep_supervision=deep_supervision,
    )
