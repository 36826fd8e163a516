"""SAM-Med3D ``vit_b_ori`` image encoder: a 3D ViT-B with windowed / global blocks and decomposed relative positions.

State-dict layout (keys under ``image_encoder.``) matches the released SAM-Med3D / SegAnyPET checkpoints: ``pos_embed``,
``patch_embed.proj``, ``blocks.{i}.{norm1,attn.qkv,attn.proj,attn.rel_pos_{d,h,w},norm2,mlp.lin1,mlp.lin2}``,
``neck.{0,1,2,3}``. Quirk kept on purpose (the weights depend on it): the windowed blocks use ``window_size`` 14 on the
8^3 token grid, i.e. the grid is zero-padded to ONE 14^3 window whose padding tokens are NOT masked out of the
attention; their relative-position tables are therefore (27, 64), the global blocks' (15, 64). Second quirk: the
three per-axis relative-position terms are broadcast onto the attention map exactly as upstream does, which is not
the textbook decomposition (``upstream_rel_pos_bias``).

All spatial tensors here are in the weights' axis order (see ``SamMed3DNet`` for the permutation from nnU-Net's).
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn


class LayerNorm3d(nn.Module):
    """LayerNorm over the channel dim of a (B, C, X, Y, Z) tensor (keys ``weight``, ``bias``)."""

    def __init__(self, num_channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(num_channels))
        self.bias = nn.Parameter(torch.zeros(num_channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(1, keepdim=True)
        var = (x - mean).pow(2).mean(1, keepdim=True)
        x = (x - mean) / torch.sqrt(var + self.eps)
        return self.weight[:, None, None, None] * x + self.bias[:, None, None, None]


class PatchEmbed3D(nn.Module):
    """Non-overlapping patch projection: (B, C_in, X, Y, Z) -> (B, X/p, Y/p, Z/p, embed_dim) channels-last."""

    def __init__(self, *, patch_size: int, in_chans: int, embed_dim: int) -> None:
        super().__init__()
        self.proj = nn.Conv3d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).permute(0, 2, 3, 4, 1)


class MLPBlock(nn.Module):
    """lin1 -> GELU -> lin2 on channels-last tokens."""

    def __init__(self, *, dim: int, hidden: int) -> None:
        super().__init__()
        self.lin1 = nn.Linear(dim, hidden)
        self.lin2 = nn.Linear(hidden, dim)
        self.act = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin2(self.act(self.lin1(x)))


def relative_position_table(size: int, rel_pos: torch.Tensor) -> torch.Tensor:
    """(size, size, head_dim) embeddings of the offsets ``q - k`` along one axis (query and key grids equal).

    Raises:
        ValueError: the table length is not ``2 * size - 1`` (the weights were trained for another grid).
    """
    if rel_pos.shape[0] != 2 * size - 1:
        raise ValueError(f"relative-position table has {rel_pos.shape[0]} rows, a grid of {size} needs {2 * size - 1}")
    idx = torch.arange(size, device=rel_pos.device)
    return rel_pos[idx[:, None] - idx[None, :] + size - 1]


def upstream_rel_pos_bias(rel_d: torch.Tensor, rel_h: torch.Tensor, rel_w: torch.Tensor) -> torch.Tensor:
    """Attention bias (B', qd, qh, qw, kd, kh, kw) from the per-axis terms, combined exactly as upstream does.

    Each term is (B', qd, qh, qw, k) = query . table[q_axis - k]. Upstream SAM-Med3D adds them to the 7-D attention
    map with SAM's 2-D broadcasting pattern extended to 3-D, which places them on other axes than the names say:
    the d term varies with the key's LAST index; the h term is read at query position (qd, qh, kd) and varies with
    kw; the w term is read at (qd, qh, kh) and varies with kw. On a cubic grid this broadcasts without error, and
    the released weights were trained with it, so it is kept verbatim (a "fixed" version changes every output).

    Args:
        rel_d / rel_h / rel_w: (B', s, s, s, s) float, s the (cubic) grid edge.
    """
    if len(set(rel_d.shape[1:])) != 1:
        raise ValueError(f"upstream relative-position bias needs a cubic token grid, got {tuple(rel_d.shape[1:4])}")
    return rel_d[:, :, :, :, None, None, :] + rel_h[:, :, :, None, :, None, :] + rel_w[:, :, :, None, None, :, :]


class Attention(nn.Module):
    """Multi-head self-attention with decomposed (per-axis) relative positions on a cubic grid of ``grid`` tokens."""

    def __init__(self, *, dim: int, num_heads: int, grid: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        head_dim = dim // num_heads
        self.scale = head_dim**-0.5
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)
        self.rel_pos_d = nn.Parameter(torch.zeros(2 * grid - 1, head_dim))
        self.rel_pos_h = nn.Parameter(torch.zeros(2 * grid - 1, head_dim))
        self.rel_pos_w = nn.Parameter(torch.zeros(2 * grid - 1, head_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B', D, H, W, C) channels-last tokens -> same shape."""
        b, d, h, w, c = x.shape
        n = d * h * w
        qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, -1).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)  # (B', heads, N, head_dim)
        rq = q.reshape(b * self.num_heads, d, h, w, -1)
        rel_d = torch.einsum("bdhwc,dkc->bdhwk", rq, relative_position_table(d, self.rel_pos_d))
        rel_h = torch.einsum("bdhwc,hkc->bdhwk", rq, relative_position_table(h, self.rel_pos_h))
        rel_w = torch.einsum("bdhwc,wkc->bdhwk", rq, relative_position_table(w, self.rel_pos_w))
        bias = upstream_rel_pos_bias(rel_d, rel_h, rel_w).reshape(b, self.num_heads, n, n)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias.to(q.dtype), scale=self.scale)
        return self.proj(out.permute(0, 2, 1, 3).reshape(b, d, h, w, c))


def window_partition(x: torch.Tensor, window: int) -> tuple[torch.Tensor, tuple[int, int, int]]:
    """(B, D, H, W, C) -> (B * n_windows, window, window, window, C), zero-padding each axis up to a multiple."""
    b, d, h, w, c = x.shape
    pads = [(window - s % window) % window for s in (d, h, w)]
    if any(pads):
        x = F.pad(x, (0, 0, 0, pads[2], 0, pads[1], 0, pads[0]))
    dp, hp, wp = d + pads[0], h + pads[1], w + pads[2]
    x = x.view(b, dp // window, window, hp // window, window, wp // window, window, c)
    return x.permute(0, 1, 3, 5, 2, 4, 6, 7).reshape(-1, window, window, window, c), (dp, hp, wp)


def window_unpartition(
    windows: torch.Tensor, window: int, padded: tuple[int, int, int], size: tuple[int, int, int]
) -> torch.Tensor:
    """Inverse of ``window_partition``; drops the padding -> (B, D, H, W, C)."""
    dp, hp, wp = padded
    nd, nh, nw = dp // window, hp // window, wp // window
    b = windows.shape[0] // (nd * nh * nw)
    x = windows.view(b, nd, nh, nw, window, window, window, -1).permute(0, 1, 4, 2, 5, 3, 6, 7)
    x = x.reshape(b, dp, hp, wp, -1)
    return x[:, : size[0], : size[1], : size[2]].contiguous()


class Block3D(nn.Module):
    """Pre-norm transformer block; ``window > 0`` runs attention inside (padded, unmasked) windows."""

    def __init__(self, *, dim: int, num_heads: int, mlp_ratio: float, window: int, grid: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim=dim, num_heads=num_heads, grid=window if window > 0 else grid)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = MLPBlock(dim=dim, hidden=int(dim * mlp_ratio))
        self.window = window

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x
        x = self.norm1(x)
        if self.window > 0:
            size = tuple(x.shape[1:4])
            x, padded = window_partition(x, self.window)
            x = window_unpartition(self.attn(x), self.window, padded, size)
        else:
            x = self.attn(x)
        x = shortcut + x
        return x + self.mlp(self.norm2(x))


class ImageEncoderViT3D(nn.Module):
    """ViT encoder: (B, 1, S, S, S) z-scored crop -> (B, out_chans, S/p, S/p, S/p) image embedding."""

    def __init__(
        self,
        *,
        img_size: int,
        patch_size: int,
        in_chans: int,
        embed_dim: int,
        depth: int,
        num_heads: int,
        mlp_ratio: float,
        out_chans: int,
        window_size: int,
        global_attn_indexes: Sequence[int],
    ) -> None:
        super().__init__()
        self.img_size = img_size
        grid = img_size // patch_size
        self.patch_embed = PatchEmbed3D(patch_size=patch_size, in_chans=in_chans, embed_dim=embed_dim)
        self.pos_embed = nn.Parameter(torch.zeros(1, grid, grid, grid, embed_dim))
        self.blocks = nn.ModuleList(
            Block3D(
                dim=embed_dim,
                num_heads=num_heads,
                mlp_ratio=mlp_ratio,
                window=0 if i in global_attn_indexes else window_size,
                grid=grid,
            )
            for i in range(depth)
        )
        self.neck = nn.Sequential(
            nn.Conv3d(embed_dim, out_chans, kernel_size=1, bias=False),
            LayerNorm3d(out_chans),
            nn.Conv3d(out_chans, out_chans, kernel_size=3, padding=1, bias=False),
            LayerNorm3d(out_chans),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(x) + self.pos_embed
        for block in self.blocks:
            x = block(x)
        return self.neck(x.permute(0, 4, 1, 2, 3))
