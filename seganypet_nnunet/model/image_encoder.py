"""Image encoder: the nnU-Net-planned U-Net backbone, run once per crop, exposing multi-scale decoder features."""

from __future__ import annotations

import math
import pydoc
from typing import Sequence

import torch
from torch import nn

INPUT_TRANSFORMS = ("log1p_suv", "identity")


def resolve_class(dotted: str | type, what: str) -> type:
    """Resolves a dotted-path string (as stored in plans) to a class; classes pass through unchanged."""
    if isinstance(dotted, type):
        return dotted
    cls = pydoc.locate(dotted)
    if not isinstance(cls, type):
        raise ValueError(f"{what}: cannot import {dotted!r}")
    return cls


class InputTransform(nn.Module):
    """Fixed per-channel intensity transform applied before the backbone (docs/DESIGN.md, Normalisation).

    ``"log1p_suv"``: log1p(max(x, 0)) for PET in SUV; ``"identity"``: unchanged (e.g. CT after CTNormalization).
    """

    def __init__(self, *, transforms: Sequence[str], input_channels: int) -> None:
        super().__init__()
        transforms = list(transforms)
        if len(transforms) != input_channels:
            raise ValueError(f"input_transforms has {len(transforms)} entries for {input_channels} input channels")
        bad = [t for t in transforms if t not in INPUT_TRANSFORMS]
        if bad:
            raise ValueError(f"input_transforms: unknown {bad}; valid: {list(INPUT_TRANSFORMS)}")
        self.transforms = transforms
        self.register_buffer("log_channels", torch.tensor([t == "log1p_suv" for t in transforms]), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, C, P0, P1, P2) float, network-input voxels -> same shape/dtype."""
        if not any(t == "log1p_suv" for t in self.transforms):
            return x
        if all(t == "log1p_suv" for t in self.transforms):
            return torch.log1p(x.clamp_min(0))
        sel = self.log_channels.view(1, -1, *([1] * (x.ndim - 2)))
        return torch.where(sel, torch.log1p(x.clamp_min(0)), x)


def run_unet_decoder(
    decoder: nn.Module, skips: Sequence[torch.Tensor]
) -> tuple[torch.Tensor | list[torch.Tensor], list[torch.Tensor]]:
    """Runs a dynamic_network_architectures ``UNetDecoder`` exactly like its ``forward``, also returning features.

    Args:
        decoder: a dna ``UNetDecoder`` (attributes transpconvs, stages, seg_layers, deep_supervision).
        skips: encoder outputs, finest first, bottleneck last: (B, C_e, *spatial_e) float.

    Returns:
        (seg, features): ``seg`` is what ``decoder.forward(skips)`` returns (list of logits finest first when
        ``decoder.deep_supervision``, else one (B, num_classes, *patch) tensor); ``features[s]`` is the output of
        decoder stage s (s = 0 coarsest), shape (B, C, *spatial) at the resolution of ``skips[-(s + 2)]``.
    """
    lres = skips[-1]
    seg_outputs: list[torch.Tensor] = []
    features: list[torch.Tensor] = []
    n = len(decoder.stages)
    for s in range(n):
        x = decoder.transpconvs[s](lres)
        x = torch.cat((x, skips[-(s + 2)]), 1)
        x = decoder.stages[s](x)
        features.append(x)
        if decoder.deep_supervision:
            seg_outputs.append(decoder.seg_layers[s](x))
        elif s == n - 1:
            seg_outputs.append(decoder.seg_layers[-1](x))
        lres = x
    seg_outputs = seg_outputs[::-1]
    return (seg_outputs if decoder.deep_supervision else seg_outputs[0]), features


def cumulative_strides(strides: Sequence[Sequence[int]]) -> list[tuple[int, ...]]:
    """Per backbone level, the product of the pooling strides so far (preprocessed axes (P0, P1, P2))."""
    cum = [1] * len(strides[0])
    out = []
    for stride in strides:
        cum = [c * int(s) for c, s in zip(cum, stride, strict=True)]
        out.append(tuple(cum))
    return out


def token_level(strides: Sequence[Sequence[int]], token_stride: int, cumulative: bool = False) -> tuple[int, tuple]:
    """Index and cumulative stride of the backbone level the mask decoder takes its image tokens from.

    The finest level whose stride product is >= ``token_stride ** 3``, else the bottleneck. The encoder and the
    planner (which checks the patch tiles the token grid) both call this.

    Args:
        strides: per-stage pooling strides (the plans' ``arch_kwargs["strides"]``), preprocessed axes (P0, P1, P2);
            already cumulative when ``cumulative``.
        token_stride: ``PromptableConfig.token_stride``.
    """
    levels = [tuple(int(v) for v in s) for s in strides] if cumulative else cumulative_strides(strides)
    for index, level in enumerate(levels):
        if math.prod(level) >= token_stride ** len(level):
            return index, level
    return len(levels) - 1, levels[-1]


class UNetImageEncoder(nn.Module):
    """Wraps the planned U-Net (``self.backbone``, state_dict-compatible with stock nnU-Net under that prefix).

    Feature *levels* are encoder resolution levels: level e has the resolution of encoder stage e (level 0 = patch
    resolution when the first stride is 1); the last level is the bottleneck, every other level is the output of the
    decoder stage at that resolution.
    """

    def __init__(
        self,
        *,
        backbone_class: str | type,
        input_channels: int,
        num_classes: int,
        deep_supervision: bool,
        backbone_kwargs: dict,
        input_transforms: Sequence[str],
    ) -> None:
        super().__init__()
        cls = resolve_class(backbone_class, "backbone_class")
        conv_op = backbone_kwargs.get("conv_op")
        if conv_op is not nn.Conv3d:
            raise ValueError(f"SegAnyPETNet is 3D only: conv_op must be torch.nn.Conv3d, got {conv_op!r}")
        self.input_transform = InputTransform(transforms=input_transforms, input_channels=input_channels)
        self.backbone = cls(
            input_channels=input_channels,
            num_classes=num_classes,
            deep_supervision=deep_supervision,
            **backbone_kwargs,
        )
        enc = self.backbone.encoder
        self.level_channels: list[int] = list(enc.output_channels)
        self.level_strides: list[tuple[int, ...]] = cumulative_strides(enc.strides)

    @property
    def decoder(self) -> nn.Module:
        """The dna UNetDecoder (nnU-Net toggles ``.deep_supervision`` on it)."""
        return self.backbone.decoder

    def select_level(self, stride: int) -> int:
        """Finest level whose stride product is >= stride**3; the bottleneck if none is (``token_level``)."""
        return token_level(self.level_strides, stride, cumulative=True)[0]

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor | list[torch.Tensor], list[torch.Tensor]]:
        """Runs transform + encoder + decoder once.

        Args:
            x: (B, C_in, P0, P1, P2) float, network-input voxels (preprocessed by nnU-Net).

        Returns:
            (seg, levels): ``seg`` exactly as the stock U-Net forward returns it; ``levels[e]`` (B, C_e, *spatial_e)
            float features per level e (see class docstring), finest first.
        """
        skips = self.backbone.encoder(self.input_transform(x))
        seg, feats = run_unet_decoder(self.backbone.decoder, skips)
        return seg, feats[::-1] + [skips[-1]]

    def compute_conv_feature_map_size(self, patch_size: Sequence[int]) -> int:
        """Backbone feature-map voxel count (nnU-Net's VRAM proxy), patch_size in network-input axis order."""
        return int(self.backbone.compute_conv_feature_map_size(list(patch_size)))
