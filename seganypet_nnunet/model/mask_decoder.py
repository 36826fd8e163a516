"""Mask decoder: two-way transformer + hypernetwork dot product with a cheap, cached high-resolution embedding."""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from seganypet_nnunet.model.transformer import MLP, TwoWayTransformer, hypernetwork_mlps, hypernetwork_weights


class MaskDecoder3D(nn.Module):
    """Predicts binary mask logits at full patch resolution and an IoU estimate per mask.

    Per click, the only high-resolution work is: trilinear upsample of ``mask_channels`` channels from the token grid
    to the cached map's grid, add, GELU, a ``mask_channels``-long dot product per voxel, and (if the cached map is
    coarser than the patch) a 1-channel trilinear upsample to the patch. With click maps: one 1x1 conv (maps ->
    channels) and ``num_click_maps`` more dot-product channels; no spatial convolutions run at high resolution.
    """

    def __init__(
        self,
        *,
        embed_dim: int,
        transformer: TwoWayTransformer,
        mask_channels: int,
        num_multimask_outputs: int,
        iou_head_depth: int,
        iou_head_hidden_dim: int,
        num_click_maps: int = 0,
    ) -> None:
        super().__init__()
        self.transformer = transformer
        self.num_mask_tokens = 1 + num_multimask_outputs
        self.iou_token = nn.Embedding(1, embed_dim)
        self.mask_tokens = nn.Embedding(self.num_mask_tokens, embed_dim)
        # Token-grid -> high-res channels; upsampled per click and added to the cached high-res map.
        self.token_to_mask = nn.Linear(embed_dim, mask_channels)
        # Click maps (ClickEncoder) -> high-res channels, added before the GELU; the raw maps are also dot-product
        # channels, so each mask token weighs "near a positive click", "looks like a negative click", ... directly.
        self.num_click_maps = num_click_maps
        self.click_fuse = nn.Conv3d(num_click_maps, mask_channels, kernel_size=1) if num_click_maps else None
        self.output_hypernetworks_mlps = hypernetwork_mlps(
            embed_dim=embed_dim, out_dim=mask_channels + num_click_maps, num_mask_tokens=self.num_mask_tokens
        )
        self.iou_prediction_head = MLP(
            in_dim=embed_dim, hidden_dim=iou_head_hidden_dim, out_dim=self.num_mask_tokens, num_layers=iou_head_depth
        )

    def forward(
        self,
        *,
        image_tokens: torch.Tensor,
        image_pe: torch.Tensor,
        sparse: torch.Tensor,
        dense: torch.Tensor,
        highres_map: torch.Tensor,
        patch_shape: Sequence[int],
        multimask: bool = False,
        click_maps: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Decodes masks.

        Args:
            image_tokens: (B, C, *grid) float image tokens (prompt-independent, cached).
            image_pe: (1, C, *grid) float dense positional encoding (cached).
            sparse: (B, Nt, C) float prompt tokens.
            dense: (B, C, *grid) float dense prompt embedding.
            highres_map: (B, mask_channels, *hr_grid) float cached high-resolution map.
            patch_shape: (P0, P1, P2) network-input patch shape.
            multimask: return the ``num_multimask_outputs`` extra masks instead of the single mask.
            click_maps: (B, num_click_maps, *hr_grid) float ``ClickEncoder`` maps; required iff num_click_maps > 0.

        Returns:
            (masks (B, M, *patch) float logits, iou (B, M) float predicted IoU), M = 1 unless multimask.
        """
        b = sparse.shape[0]
        out = torch.cat([self.iou_token.weight, self.mask_tokens.weight], dim=0).unsqueeze(0).expand(b, -1, -1)
        tokens = torch.cat([out.to(sparse.dtype), sparse], dim=1)
        hs, src = self.transformer(image_tokens + dense, image_pe, tokens)
        iou = self.iou_prediction_head(hs[:, 0])
        sel = slice(1, self.num_mask_tokens) if multimask else slice(0, 1)
        mask_tokens_out = hs[:, 1 : 1 + self.num_mask_tokens]
        hyper = hypernetwork_weights(self.output_hypernetworks_mlps, mask_tokens_out)[:, sel]
        grid = image_tokens.shape[2:]
        low = self.token_to_mask(src).transpose(1, 2).reshape(b, -1, *grid)
        hr_shape = highres_map.shape[2:]
        if tuple(hr_shape) != tuple(grid):
            low = F.interpolate(low, size=hr_shape, mode="trilinear", align_corners=False)
        emb = low + highres_map
        if self.click_fuse is not None:
            if click_maps is None:
                raise ValueError("MaskDecoder3D: click_maps are required when num_click_maps > 0")
            emb = torch.cat([F.gelu(emb + self.click_fuse(click_maps)), click_maps], dim=1)
        else:
            emb = F.gelu(emb)
        masks = torch.einsum("bmc,bcxyz->bmxyz", hyper, emb)
        if tuple(hr_shape) != tuple(patch_shape):
            masks = F.interpolate(masks, size=tuple(patch_shape), mode="trilinear", align_corners=False)
        return masks, iou[:, sel]
