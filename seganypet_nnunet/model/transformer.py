"""Two-way transformer (SAM): prompt tokens and image tokens attend to each other."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class MLPBlock(nn.Module):
    """Linear -> activation -> Linear on (..., embed_dim) tokens."""

    def __init__(self, *, embed_dim: int, mlp_dim: int, act: type[nn.Module] = nn.ReLU) -> None:
        super().__init__()
        self.lin1 = nn.Linear(embed_dim, mlp_dim)
        self.lin2 = nn.Linear(mlp_dim, embed_dim)
        self.act = act()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin2(self.act(self.lin1(x)))


class MLP(nn.Module):
    """``num_layers`` Linear layers with ReLU in between, on (..., in_dim) vectors (keys ``layers.{i}``).

    The mask decoders' hypernetworks and IoU heads (ours and SAM-Med3D's) are both built from it.
    """

    def __init__(self, *, in_dim: int, hidden_dim: int, out_dim: int, num_layers: int) -> None:
        super().__init__()
        dims = [in_dim] + [hidden_dim] * (num_layers - 1) + [out_dim]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:], strict=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = F.relu(x)
        return x


def hypernetwork_mlps(*, embed_dim: int, out_dim: int, num_mask_tokens: int) -> nn.ModuleList:
    """One 3-layer MLP per mask token (embed_dim -> embed_dim -> out_dim): ``output_hypernetworks_mlps``."""
    return nn.ModuleList(
        MLP(in_dim=embed_dim, hidden_dim=embed_dim, out_dim=out_dim, num_layers=3) for _ in range(num_mask_tokens)
    )


def hypernetwork_weights(mlps: nn.ModuleList, mask_tokens: torch.Tensor) -> torch.Tensor:
    """(B, M, out_dim) per-mask weights: MLP i applied to mask token i of ``mask_tokens`` (B, M, C)."""
    return torch.stack([mlp(mask_tokens[:, i]) for i, mlp in enumerate(mlps)], dim=1)


class Attention(nn.Module):
    """Multi-head attention whose internal width may be reduced by ``downsample_rate`` (cheaper projections)."""

    def __init__(self, *, embed_dim: int, num_heads: int, downsample_rate: int = 1) -> None:
        super().__init__()
        self.internal_dim = embed_dim // downsample_rate
        if self.internal_dim % num_heads:
            raise ValueError(f"num_heads={num_heads} must divide internal dim {self.internal_dim}")
        self.num_heads = num_heads
        self.q_proj = nn.Linear(embed_dim, self.internal_dim)
        self.k_proj = nn.Linear(embed_dim, self.internal_dim)
        self.v_proj = nn.Linear(embed_dim, self.internal_dim)
        self.out_proj = nn.Linear(self.internal_dim, embed_dim)

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        return x.reshape(b, n, self.num_heads, c // self.num_heads).transpose(1, 2)

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """q: (B, Nq, C), k/v: (B, Nk, C) float -> (B, Nq, C) float."""
        out = F.scaled_dot_product_attention(
            self._split(self.q_proj(q)), self._split(self.k_proj(k)), self._split(self.v_proj(v))
        )
        b, h, n, d = out.shape
        return self.out_proj(out.transpose(1, 2).reshape(b, n, h * d))


class TwoWayAttentionBlock(nn.Module):
    """Self-attn on tokens, tokens->image cross-attn, token MLP, image->tokens cross-attn (SAM's block)."""

    def __init__(
        self, *, embed_dim: int, num_heads: int, mlp_dim: int, attention_downsample: int, skip_first_layer_pe: bool
    ) -> None:
        super().__init__()
        self.self_attn = Attention(embed_dim=embed_dim, num_heads=num_heads)
        self.norm1 = nn.LayerNorm(embed_dim)
        self.cross_attn_token_to_image = Attention(
            embed_dim=embed_dim, num_heads=num_heads, downsample_rate=attention_downsample
        )
        self.norm2 = nn.LayerNorm(embed_dim)
        self.mlp = MLPBlock(embed_dim=embed_dim, mlp_dim=mlp_dim)
        self.norm3 = nn.LayerNorm(embed_dim)
        self.cross_attn_image_to_token = Attention(
            embed_dim=embed_dim, num_heads=num_heads, downsample_rate=attention_downsample
        )
        self.norm4 = nn.LayerNorm(embed_dim)
        self.skip_first_layer_pe = skip_first_layer_pe

    def forward(
        self, queries: torch.Tensor, keys: torch.Tensor, query_pe: torch.Tensor, key_pe: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """queries: (B, Nt, C) tokens; keys: (B, Ni, C) image tokens; *_pe: same shapes -> updated (queries, keys)."""
        if self.skip_first_layer_pe:
            queries = self.self_attn(queries, queries, queries)
        else:
            q = queries + query_pe
            queries = queries + self.self_attn(q, q, queries)
        queries = self.norm1(queries)
        k = keys + key_pe
        queries = self.norm2(queries + self.cross_attn_token_to_image(queries + query_pe, k, keys))
        queries = self.norm3(queries + self.mlp(queries))
        keys = self.norm4(keys + self.cross_attn_image_to_token(k, queries + query_pe, queries))
        return queries, keys


class TwoWayTransformer(nn.Module):
    """Stack of ``depth`` two-way blocks plus a final tokens->image attention."""

    def __init__(
        self, *, depth: int, embed_dim: int, num_heads: int, mlp_dim: int, attention_downsample: int = 2
    ) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            TwoWayAttentionBlock(
                embed_dim=embed_dim,
                num_heads=num_heads,
                mlp_dim=mlp_dim,
                attention_downsample=attention_downsample,
                skip_first_layer_pe=(i == 0),
            )
            for i in range(depth)
        )
        self.final_attn_token_to_image = Attention(
            embed_dim=embed_dim, num_heads=num_heads, downsample_rate=attention_downsample
        )
        self.norm_final_attn = nn.LayerNorm(embed_dim)

    def forward(
        self, image_embedding: torch.Tensor, image_pe: torch.Tensor, point_embedding: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Runs the two-way exchange.

        Args:
            image_embedding: (B, C, P0, P1, P2) float image tokens on the token grid.
            image_pe: (1 or B, C, P0, P1, P2) float dense positional encoding.
            point_embedding: (B, Nt, C) float output/prompt tokens.

        Returns:
            (tokens (B, Nt, C), image tokens (B, X*Y*Z, C) flattened in C-order of the grid).
        """
        b = image_embedding.shape[0]
        keys = image_embedding.flatten(2).transpose(1, 2)
        key_pe = image_pe.flatten(2).transpose(1, 2).expand(b, -1, -1)
        queries = point_embedding
        for layer in self.layers:
            queries, keys = layer(queries, keys, point_embedding, key_pe)
        attn = self.final_attn_token_to_image(queries + point_embedding, keys + key_pe, keys)
        return self.norm_final_attn(queries + attn), keys
