"""Prompt encoder: points, 3D boxes and a previous mask -> sparse tokens and a dense embedding (SAM-style, 3D)."""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn

from seganypet_nnunet.prompts.types import Prompts

# Rows of the type-embedding table. One table keeps every row in the graph (dense gradient) on every step (DDP).
_PAD, _NEG, _POS, _BOX_MIN, _BOX_MAX, _NO_BOX_MIN, _NO_BOX_MAX = range(7)


class PositionEmbeddingRandom3D(nn.Module):
    """Random Fourier features of normalised 3D coordinates (SAM's PositionEmbeddingRandom, 3D, no axis swap)."""

    def __init__(self, *, num_pos_feats: int, scale: float = 1.0) -> None:
        super().__init__()
        self.register_buffer("gaussian_matrix", scale * torch.randn(3, num_pos_feats))

    def _encode(self, unit_coords: torch.Tensor) -> torch.Tensor:
        """unit_coords: (..., 3) float in [0, 1] -> (..., 2 * num_pos_feats) float."""
        c = (2 * unit_coords - 1) @ self.gaussian_matrix.to(unit_coords.dtype)
        c = 2 * math.pi * c
        return torch.cat([torch.sin(c), torch.cos(c)], dim=-1)

    def forward_with_coords(self, coords: torch.Tensor, patch_shape: Sequence[int]) -> torch.Tensor:
        """coords: (B, N, 3) float network-input voxel indices (input-tensor axis order) -> (B, N, embed_dim)."""
        size = torch.tensor(list(patch_shape), dtype=coords.dtype, device=coords.device)
        return self._encode((coords + 0.5) / size)

    def dense(self, grid_shape: Sequence[int], device: torch.device, dtype: torch.dtype) -> torch.Tensor:
        """Encoding of token-cell centres -> (1, embed_dim, *grid_shape), same space as ``forward_with_coords``."""
        axes = [(torch.arange(g, device=device, dtype=dtype) + 0.5) / g for g in grid_shape]
        unit = torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1)
        return self._encode(unit).permute(3, 0, 1, 2).unsqueeze(0)


class LayerNorm3d(nn.Module):
    """LayerNorm over the channel axis of (B, C, P0, P1, P2) tensors."""

    def __init__(self, *, num_channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(num_channels))
        self.bias = nn.Parameter(torch.zeros(num_channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        u = x.mean(1, keepdim=True)
        s = (x - u).pow(2).mean(1, keepdim=True)
        x = (x - u) / torch.sqrt(s + self.eps)
        return self.weight[:, None, None, None] * x + self.bias[:, None, None, None]


class PromptEncoder3D(nn.Module):
    """Embeds prompts for the mask decoder.

    Sparse tokens: one per point (Fourier PE + projected image feature at the point + type embedding; padding points
    get only the padding embedding) and always two box tokens (corner PE + corner embedding where ``box_mask``,
    learned "no box" embeddings elsewhere).
    Dense embedding: previous mask patchified to the token grid, or a learned "no mask" embedding.
    """

    def __init__(
        self,
        *,
        embed_dim: int,
        token_stride: Sequence[int],
        mask_in_chans: int,
        pe_scale: float = 1.0,
        point_features: bool = True,
    ) -> None:
        super().__init__()
        self.embed_dim = embed_dim
        self.token_stride = tuple(int(s) for s in token_stride)
        self.pe_layer = PositionEmbeddingRandom3D(num_pos_feats=embed_dim // 2, scale=pe_scale)
        self.type_embed = nn.Embedding(7, embed_dim)
        self.no_mask_embed = nn.Embedding(1, embed_dim)
        # Image token sampled at each click (what the clicked tissue looks like) -> added to that point's token.
        self.point_feature_proj = nn.Linear(embed_dim, embed_dim) if point_features else None
        # Patchify: one conv with kernel = stride = token stride (cheap even at 128^3: one pass, 1 input channel).
        self.mask_downscaling = nn.Sequential(
            nn.Conv3d(1, mask_in_chans, kernel_size=self.token_stride, stride=self.token_stride),
            LayerNorm3d(num_channels=mask_in_chans),
            nn.GELU(),
            nn.Conv3d(mask_in_chans, embed_dim, kernel_size=1),
        )

    def get_dense_pe(self, grid_shape: Sequence[int], device: torch.device, dtype: torch.dtype) -> torch.Tensor:
        """(1, embed_dim, *grid_shape) float positional encoding of the image tokens."""
        return self.pe_layer.dense(grid_shape, device, dtype)

    def _embed_points(
        self, points: torch.Tensor, labels: torch.Tensor, patch_shape: Sequence[int], features: torch.Tensor | None
    ) -> torch.Tensor:
        pe = self.pe_layer.forward_with_coords(points, patch_shape)
        if features is not None and self.point_feature_proj is not None:
            pe = pe + self.point_feature_proj(features.to(pe.dtype))
        pe = pe * (labels != -1).unsqueeze(-1).to(pe.dtype)
        return pe + self.type_embed((labels + 1).clamp(0, 2))  # -1 -> PAD, 0 -> NEG, 1 -> POS

    def _embed_boxes(
        self,
        boxes: torch.Tensor | None,
        box_mask: torch.Tensor | None,
        batch: int,
        patch_shape: Sequence[int],
        device: torch.device,
    ) -> torch.Tensor:
        absent = self.type_embed(torch.tensor([_NO_BOX_MIN, _NO_BOX_MAX], device=device)).unsqueeze(0)
        absent = absent.expand(batch, -1, -1)
        if boxes is None:
            return absent
        corners = self.type_embed(torch.tensor([_BOX_MIN, _BOX_MAX], device=device)).unsqueeze(0)
        present = self.pe_layer.forward_with_coords(boxes, patch_shape) + corners
        if box_mask is None:
            return present
        return torch.where(box_mask.view(-1, 1, 1), present, absent)

    def _embed_mask(
        self, mask: torch.Tensor | None, present: torch.Tensor | None, batch: int, grid_shape: Sequence[int]
    ) -> torch.Tensor:
        no_mask = self.no_mask_embed.weight.view(1, -1, 1, 1, 1)
        if mask is None:
            return no_mask.expand(batch, -1, *grid_shape)
        dense = self.mask_downscaling(mask)
        if present is None:
            return dense
        return torch.where(present.view(-1, 1, 1, 1, 1), dense, no_mask)

    def forward(
        self,
        prompts: Prompts,
        *,
        batch: int,
        patch_shape: Sequence[int],
        grid_shape: Sequence[int],
        device: torch.device,
        point_features: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Embeds validated prompts.

        Args:
            prompts: see ``Prompts``; coordinates in network-input voxel space, input-tensor axis order.
            batch: B.
            patch_shape: spatial shape of the network input (P0, P1, P2).
            grid_shape: token grid (patch // token stride).
            device: device of the image tokens.
            point_features: (B, N, embed_dim) float image tokens sampled at the points (``sample_at_points``), or
                None; projected and added to the point tokens (padding points excluded).

        Returns:
            sparse: (B, N + 2, embed_dim) float (points then the two box tokens);
            dense: (B, embed_dim, *grid_shape) float.
        """
        tokens = []
        if prompts.points is not None and prompts.points.shape[1] > 0:
            tokens.append(self._embed_points(prompts.points, prompts.point_labels, patch_shape, point_features))
        tokens.append(self._embed_boxes(prompts.boxes, prompts.box_mask, batch, patch_shape, device))
        dense = self._embed_mask(prompts.mask, prompts.mask_present, batch, grid_shape)
        return torch.cat(tokens, dim=1), dense
