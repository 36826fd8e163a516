"""SAM-Med3D mask decoder: two-way transformer over [IoU token, 4 mask tokens, prompt tokens] and the image tokens.

Keys under ``mask_decoder.`` match the released checkpoints (120): ``iou_token``, ``mask_tokens`` (4 = 3 multimask +
1 single), ``transformer.*`` (our ``TwoWayTransformer``: depth 2, 8 heads, MLP 2048 with ReLU, cross-attention
internal width embed_dim / 2), ``output_upscaling.{0,1,3}`` (two stride-2 transposed convs: token grid -> 4 x grid,
embed_dim / 8 channels), ``output_hypernetworks_mlps.{0..3}``, ``iou_prediction_head``. Output: low-res logits on the
4 x token grid (32^3 for 128^3 crops). Tensors in the weights' axis order.
"""

from __future__ import annotations

import torch
from torch import nn

from seganypet_nnunet.model.sam_med3d.image_encoder import LayerNorm3d
from seganypet_nnunet.model.transformer import MLP, TwoWayTransformer, hypernetwork_mlps, hypernetwork_weights


class MaskDecoder3D(nn.Module):
    """Image embedding + prompt embeddings -> low-res mask logits and IoU predictions."""

    def __init__(
        self, *, embed_dim: int, num_multimask_outputs: int, iou_head_depth: int, iou_head_hidden_dim: int
    ) -> None:
        super().__init__()
        self.transformer = TwoWayTransformer(depth=2, embed_dim=embed_dim, num_heads=8, mlp_dim=2048)
        self.num_mask_tokens = num_multimask_outputs + 1
        self.iou_token = nn.Embedding(1, embed_dim)
        self.mask_tokens = nn.Embedding(self.num_mask_tokens, embed_dim)
        self.output_upscaling = nn.Sequential(
            nn.ConvTranspose3d(embed_dim, embed_dim // 4, kernel_size=2, stride=2),
            LayerNorm3d(embed_dim // 4),
            nn.GELU(),
            nn.ConvTranspose3d(embed_dim // 4, embed_dim // 8, kernel_size=2, stride=2),
            nn.GELU(),
        )
        self.output_hypernetworks_mlps = hypernetwork_mlps(
            embed_dim=embed_dim, out_dim=embed_dim // 8, num_mask_tokens=self.num_mask_tokens
        )
        self.iou_prediction_head = MLP(
            in_dim=embed_dim, hidden_dim=iou_head_hidden_dim, out_dim=self.num_mask_tokens, num_layers=iou_head_depth
        )
        #: nnU-Net's trainer sets ``network.decoder.deep_supervision``; this network has none (always False).
        self.deep_supervision = False

    def forward(
        self,
        image_embeddings: torch.Tensor,
        image_pe: torch.Tensor,
        sparse: torch.Tensor,
        dense: torch.Tensor,
        multimask: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Predicts masks.

        Args:
            image_embeddings: (1 or B, C, *grid) image tokens (batch 1 is broadcast).
            image_pe: (1, C, *grid) dense positional encoding.
            sparse: (B, N, C) prompt tokens; dense: (B, C, *grid) mask-prompt embedding.
            multimask: return the 3 multimask outputs instead of the single-mask output (token 0).

        Returns:
            low-res logits (B, M, *4grid), iou (B, M); M = 1, or 3 with ``multimask``.
        """
        b = sparse.shape[0]
        out_tokens = torch.cat([self.iou_token.weight, self.mask_tokens.weight], dim=0)
        tokens = torch.cat([out_tokens.unsqueeze(0).expand(b, -1, -1), sparse.to(out_tokens.dtype)], dim=1)
        src = image_embeddings.expand(b, -1, -1, -1, -1) + dense
        c, grid = src.shape[1], src.shape[2:]
        hs, keys = self.transformer(src, image_pe, tokens)
        up = self.output_upscaling(keys.transpose(1, 2).reshape(b, c, *grid))
        mask_tokens = hs[:, 1 : 1 + self.num_mask_tokens]
        hyper = hypernetwork_weights(self.output_hypernetworks_mlps, mask_tokens)
        masks = (hyper @ up.flatten(2)).view(b, -1, *up.shape[2:])
        iou = self.iou_prediction_head(hs[:, 0])
        sl = slice(1, None) if multimask else slice(0, 1)
        return masks[:, sl], iou[:, sl]
