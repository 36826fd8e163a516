"""Configuration of the promptable part of SegAnyPETNet (prompt encoder + two-way mask decoder).

The backbone (image encoder) is configured by nnU-Net's plans; only the promptable head lives here.
"""

from __future__ import annotations

from dataclasses import dataclass, fields


@dataclass(frozen=True)
class PromptableConfig:
    """Hyper-parameters of the prompt encoder and the mask decoder.

    Attributes:
        embed_dim: width of prompt tokens and image tokens. Must be even (random Fourier features give
            sin + cos halves). Drives the per-click cost linearly through the image-token projections.
        num_heads: attention heads in the two-way transformer; must divide ``embed_dim // attention_downsample``.
        depth: number of two-way attention blocks. SAM uses 2: enough for tokens <-> image exchange, cheap per click.
        mlp_dim: hidden width of the token MLP. Applied to prompt tokens only, so it is almost free per click.
        attention_downsample: cross-attention internal width is ``embed_dim // attention_downsample`` (SAM: 2); it
            halves the cost of the image-token projections, the dominant per-click term.
        token_stride: the image tokens are taken from the finest backbone level whose stride product (over the three
            axes) is >= ``token_stride ** 3``. 8 gives 16^3 = 4096 tokens for a 128^3 patch (SAM-Med3D uses 8^3 at
            stride 16); finer grids cost attention time quadratically in nothing but linearly in projections.
        mask_stride: the cached high-resolution map comes from the finest level whose stride product is >=
            ``mask_stride ** 3``. 2 keeps the per-click full-resolution work to one 1-channel trilinear upsample.
        mask_channels: channels of the cached high-resolution map and of the hypernetwork output. Small on purpose:
            the per-click cost at high resolution is proportional to it.
        mask_in_chans: channels of the patchifying conv that embeds a previous mask (dense prompt).
        num_multimask_outputs: extra mask tokens for ``decode(multimask=True)`` (SAM: 3). 0 = single-mask network.
            When > 0, training must use all mask tokens to keep every parameter in the graph (DDP).
        iou_head_depth: layers of the IoU prediction MLP.
        iou_head_hidden_dim: hidden width of the IoU prediction MLP.
        pe_scale: std of the random Fourier matrix (SAM: 1.0); larger = higher-frequency coordinate features.
        max_points: most point prompts accepted per sample (guards against runaway click lists).
        point_features: add a projection of the image token sampled at each click to that point's token, so the
            decoder knows what the clicked tissue looks like (also for structures never prompted in training).
        click_maps: render clicks (Gaussians, feature similarity to the clicked voxels) and the previous mask on the
            high-res grid and feed them to the mask pathway (``ClickEncoder``): direct include / exclude effects.
        click_sigma: std of the click Gaussians, in voxels of the high-res (mask-stride) grid.
    """

    embed_dim: int = 192
    num_heads: int = 8
    depth: int = 2
    mlp_dim: int = 1024
    attention_downsample: int = 2
    token_stride: int = 8
    mask_stride: int = 2
    mask_channels: int = 16
    mask_in_chans: int = 16
    num_multimask_outputs: int = 0
    iou_head_depth: int = 3
    iou_head_hidden_dim: int = 128
    pe_scale: float = 1.0
    max_points: int = 64
    point_features: bool = True
    click_maps: bool = True
    click_sigma: float = 2.0

    def __post_init__(self) -> None:
        if self.embed_dim % 2:
            raise ValueError(f"PromptableConfig.embed_dim must be even, got {self.embed_dim}")
        internal = self.embed_dim // self.attention_downsample
        if internal % self.num_heads:
            raise ValueError(
                f"PromptableConfig: num_heads={self.num_heads} must divide embed_dim // attention_downsample={internal}"
            )
        for name in ("token_stride", "mask_stride"):
            value = getattr(self, name)
            if value < 1 or value & (value - 1):
                raise ValueError(f"PromptableConfig.{name} must be a power of two >= 1, got {value}")
        if self.click_sigma <= 0:
            raise ValueError(f"PromptableConfig.click_sigma must be > 0, got {self.click_sigma}")
        if self.mask_stride > self.token_stride:
            raise ValueError("PromptableConfig.mask_stride must be <= token_stride")

    @classmethod
    def from_dict(cls, values: dict) -> PromptableConfig:
        """Builds a config from ``dataclasses.asdict`` output (plans JSON); unknown keys raise ValueError."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"PromptableConfig: unknown keys {unknown}; valid keys: {sorted(known)}")
        return cls(**values)


MODEL_CONFIGS: dict[str, PromptableConfig] = {
    # Meets the per-click budget (<= 100 ms on 2 CPU cores for a 128^3 crop, see bench/bench_click_cost.py).
    "default": PromptableConfig(),
    # Cheaper head for small GPUs / laptops.
    "small": PromptableConfig(embed_dim=128, num_heads=4, mlp_dim=512, mask_channels=8, iou_head_hidden_dim=64),
    # Unit tests only.
    "tiny": PromptableConfig(
        embed_dim=32,
        num_heads=2,
        depth=2,
        mlp_dim=64,
        token_stride=4,
        mask_stride=2,
        mask_channels=4,
        mask_in_chans=4,
        iou_head_hidden_dim=16,
        max_points=16,
    ),
}


def get_model_config(name: str) -> PromptableConfig:
    """Returns the named promptable config; raises KeyError listing the valid names."""
    if name not in MODEL_CONFIGS:
        raise KeyError(f"unknown model config {name!r}; valid names: {sorted(MODEL_CONFIGS)}")
    return MODEL_CONFIGS[name]
