"""SAM-Med3D prompt encoder: random-Fourier point encoding, label embeddings, previous-mask downscaling.

Keys under ``prompt_encoder.`` match the released checkpoints (15): ``pe_layer.positional_encoding_gaussian_matrix``
(a persistent (3, 128) buffer), ``point_embeddings.{0,1}`` (negative, positive), ``not_a_point_embed``,
``no_mask_embed``, ``mask_downscaling.{0,1,3,4,6}``. Quirks kept on purpose (the weights depend on them):

- the encoding is ``[sin, cos, sin]`` of ``2 * pi * (2c - 1) @ G``: 3 x 128 = 384 channels;
- the DENSE grid encoding puts a point's FIRST coordinate along grid dim 1 and its SECOND along grid dim 0 (a point
  at the centre of token cell (a, b, c) matches ``dense_pe[:, b, a, c]``);
- a padding point (0, 0, 0) with label -1 is appended to the points (one click -> 2 sparse tokens);
- point coordinates are voxel indices + 0.5, divided by the input size.

Boxes are not supported: the released weights have no box embeddings (upstream's box path crashes).
Coordinates here are in the weights' axis order (see ``SamMed3DNet``).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from seganypet_nnunet.model.sam_med3d.image_encoder import LayerNorm3d


class PositionEmbeddingRandom3D(nn.Module):
    """Random spatial-frequency encoding; ``positional_encoding_gaussian_matrix`` (3, num_pos_feats) is a buffer."""

    def __init__(self, num_pos_feats: int) -> None:
        super().__init__()
        self.register_buffer("positional_encoding_gaussian_matrix", torch.randn((3, num_pos_feats)))

    def encode(self, coords: torch.Tensor) -> torch.Tensor:
        """(..., 3) coordinates normalised to [0, 1] -> (..., 3 * num_pos_feats) as [sin, cos, sin]."""
        proj = 2 * math.pi * ((2 * coords - 1) @ self.positional_encoding_gaussian_matrix)
        return torch.cat([torch.sin(proj), torch.cos(proj), torch.sin(proj)], dim=-1)

    def dense(self, grid: tuple[int, int, int]) -> torch.Tensor:
        """(C, g0, g1, g2) encoding of the token-cell centres, first two coordinates swapped (see module docstring)."""
        device = self.positional_encoding_gaussian_matrix.device
        axes = [(torch.arange(g, device=device, dtype=torch.float32) + 0.5) / g for g in grid]
        c0, c1, c2 = torch.meshgrid(*axes, indexing="ij")
        return self.encode(torch.stack([c1, c0, c2], dim=-1)).permute(3, 0, 1, 2)

    def points(self, coords: torch.Tensor, input_size: tuple[int, int, int]) -> torch.Tensor:
        """(B, N, 3) float coordinates in voxels (already shifted to voxel centres) -> (B, N, C)."""
        scale = torch.tensor(input_size, dtype=torch.float32, device=coords.device)
        return self.encode(coords.float() / scale)


class PromptEncoder3D(nn.Module):
    """Points + previous low-res mask logits -> sparse (B, N+1, C) and dense (B, C, *grid) prompt embeddings."""

    def __init__(self, *, embed_dim: int, grid: int, img_size: int, mask_in_chans: int) -> None:
        super().__init__()
        self.embed_dim = embed_dim
        self.grid = (grid, grid, grid)
        self.input_size = (img_size, img_size, img_size)
        self.pe_layer = PositionEmbeddingRandom3D(embed_dim // 3)
        self.point_embeddings = nn.ModuleList(nn.Embedding(1, embed_dim) for _ in range(2))
        self.not_a_point_embed = nn.Embedding(1, embed_dim)
        self.mask_downscaling = nn.Sequential(
            nn.Conv3d(1, mask_in_chans // 4, kernel_size=2, stride=2),
            LayerNorm3d(mask_in_chans // 4),
            nn.GELU(),
            nn.Conv3d(mask_in_chans // 4, mask_in_chans, kernel_size=2, stride=2),
            LayerNorm3d(mask_in_chans),
            nn.GELU(),
            nn.Conv3d(mask_in_chans, embed_dim, kernel_size=1),
        )
        self.no_mask_embed = nn.Embedding(1, embed_dim)

    @property
    def mask_shape(self) -> tuple[int, int, int]:
        """Spatial shape of the low-res mask prompt / output (4 x the token grid)."""
        return tuple(4 * g for g in self.grid)

    def get_dense_pe(self) -> torch.Tensor:
        """(1, C, *grid) dense positional encoding of the image tokens."""
        return self.pe_layer.dense(self.grid).unsqueeze(0)

    def embed_points(self, points: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """(B, N, 3) voxel coordinates + (B, N) labels (1, 0, -1) -> (B, N + 1, C), padding point appended."""
        b = points.shape[0]
        coords = torch.cat([points.float() + 0.5, torch.zeros((b, 1, 3), device=points.device)], dim=1)
        labels = torch.cat([labels, torch.full((b, 1), -1, dtype=labels.dtype, device=labels.device)], dim=1)
        emb = self.pe_layer.points(coords, self.input_size)
        lab = labels[..., None]
        emb = torch.where(lab == -1, self.not_a_point_embed.weight.expand_as(emb), emb)
        emb = emb + (lab == 0) * self.point_embeddings[0].weight + (lab == 1) * self.point_embeddings[1].weight
        return emb

    def forward(
        self, points: torch.Tensor | None, labels: torch.Tensor | None, masks: torch.Tensor | None, batch: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Embeds the prompts.

        Args:
            points: (B, N, 3) float voxel coordinates (weights' axis order) or None; labels: (B, N) int.
            masks: (B, 1, *mask_shape) previous low-res logits (pass zeros, not None: ``no_mask_embed`` was never
                trained), or None.
            batch: B, used when both are None.

        Returns:
            sparse (B, N + 1 or 0, C), dense (B, C, *grid).
        """
        device = self.no_mask_embed.weight.device
        if points is not None:
            sparse = self.embed_points(points, labels)
        else:
            sparse = torch.empty((batch, 0, self.embed_dim), device=device)
        if masks is not None:
            dense = self.mask_downscaling(masks)
        else:
            dense = self.no_mask_embed.weight.reshape(1, -1, 1, 1, 1).expand(batch, -1, *self.grid)
        return sparse, dense
