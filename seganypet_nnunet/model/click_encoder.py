"""Click encoder: cheap per-click maps that tell the mask decoder WHERE the clicks are and WHAT they clicked.

Two inductive biases on top of SAM's sparse point tokens (which alone learn localisation slowly):

* point features: the cached image tokens are sampled (trilinear) at each click, so a point token carries the look of
  the clicked tissue (``sample_at_points``; used by ``SegAnyPETNet.decode`` and ``PromptEncoder3D``);
* click maps in the mask pathway, on the cached high-resolution grid (patch / mask stride): Gaussian blobs around the
  positive and the negative clicks, cosine similarity of every voxel's high-res feature to the clicked voxels' features
  (max over positive / over negative clicks), and the previous mask probability. They are fused into the per-voxel
  mask embedding and also offered as extra channels to the hypernetwork dot product, so a click can directly include
  or exclude its neighbourhood and everything that looks like it, and a correction can keep the previous mask.

All coordinates are network-input voxel indices (voxel centre at integer), axis order of the input tensor.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

#: channels of ``ClickEncoder`` output: pos Gaussian, neg Gaussian, pos similarity, neg similarity, previous mask.
NUM_CLICK_MAPS = 5


def sample_at_points(features: torch.Tensor, points: torch.Tensor, patch_shape: Sequence[int]) -> torch.Tensor:
    """Trilinear sample of a feature grid that covers the patch, at network-input voxel coordinates.

    Args:
        features: (B, C, *grid) float; cell i of axis a covers input voxels [i * s_a, (i + 1) * s_a), s = patch/grid.
        points: (B, N, 3) float network-input voxel indices (input-tensor axis order).
        patch_shape: (P0, P1, P2) network-input patch shape.

    Returns:
        (B, N, C) float features at the points (border values outside the patch).
    """
    b, n = points.shape[:2]
    size = torch.tensor(list(patch_shape), dtype=points.dtype, device=points.device)
    unit = (points + 0.5) / size * 2 - 1  # align_corners=False normalised coordinates, input axis order
    grid = unit.flip(-1).reshape(b, n, 1, 1, 3)  # grid_sample wants (W, H, D) = reversed axis order
    out = F.grid_sample(features, grid.to(features.dtype), mode="bilinear", padding_mode="border", align_corners=False)
    return out.reshape(b, features.shape[1], n).transpose(1, 2)


class ClickEncoder(nn.Module):
    """Renders points and the previous mask as ``NUM_CLICK_MAPS`` dense maps on the high-resolution grid.

    Parameter-free (the mask decoder owns the 1x1 fusion). Per click the cost is O(N x hr voxels x mask_channels)
    multiply-adds plus one average pooling of the previous mask; no convolution runs at high resolution.
    """

    def __init__(self, *, sigma: float) -> None:
        super().__init__()
        self.sigma = float(sigma)

    def forward(
        self,
        *,
        points: torch.Tensor | None,
        labels: torch.Tensor | None,
        highres_unit: torch.Tensor,
        patch_shape: Sequence[int],
        mask: torch.Tensor | None,
        mask_present: torch.Tensor | None,
    ) -> torch.Tensor:
        """Click maps.

        Args:
            points: (B, N, 3) float network-input voxels or None; labels: (B, N) int64 1 / 0 / -1 (padding).
            highres_unit: (B, C, *hr) float cached high-resolution map, unit length over channels
                (``ImageEmbedding.highres_unit``).
            patch_shape: (P0, P1, P2) network-input patch shape.
            mask: (B, 1, *patch) float previous mask logits or None; mask_present: (B,) bool or None (= all).

        Returns:
            (B, NUM_CLICK_MAPS, *hr) float: [pos Gaussian, neg Gaussian, pos cosine similarity, neg cosine similarity,
            previous mask probability]; Gaussians have ``sigma`` in high-res voxels; absent kinds give 0.
        """
        hr = tuple(highres_unit.shape[2:])
        b = points.shape[0] if points is not None else (mask.shape[0] if mask is not None else highres_unit.shape[0])
        dtype, device = highres_unit.dtype, highres_unit.device
        maps = [torch.zeros((b, *hr), dtype=dtype, device=device)] * 4
        if points is not None and points.shape[1] > 0:
            maps = self._point_maps(points.to(dtype), labels, highres_unit, patch_shape)
        prev = torch.zeros((b, *hr), dtype=dtype, device=device)
        if mask is not None:
            prev = F.adaptive_avg_pool3d(torch.sigmoid(mask.to(dtype)), hr)[:, 0]
            if mask_present is not None:
                prev = prev * mask_present.view(-1, 1, 1, 1).to(dtype)
        return torch.stack([*maps, prev], dim=1)

    def _point_maps(
        self, points: torch.Tensor, labels: torch.Tensor, feats: torch.Tensor, patch_shape: Sequence[int]
    ) -> list[torch.Tensor]:
        b, n = points.shape[:2]
        hr = feats.shape[2:]
        # Gaussian in high-res voxels, separable: per-axis squared distance of cell centres to each point.
        d2 = 0
        for a, (g, p) in enumerate(zip(hr, patch_shape, strict=True)):
            stride = p / g
            centres = (torch.arange(g, device=points.device, dtype=points.dtype) + 0.5) * stride - 0.5
            diff = ((centres.view(1, 1, -1) - points[:, :, a : a + 1]) / stride) ** 2  # (B, N, g)
            shape = [b, n, 1, 1, 1]
            shape[2 + a] = g
            d2 = d2 + diff.view(shape)
        gauss = torch.exp(-d2 / (2 * self.sigma**2))  # (B, N, *hr)
        at = F.normalize(sample_at_points(feats, points, patch_shape), dim=-1)  # (B, N, C)
        sim = torch.einsum("bnc,bcxyz->bnxyz", at, feats.expand(b, -1, -1, -1, -1))
        view = (b, n, 1, 1, 1)
        pos, neg = (labels == 1).view(view), (labels == 0).view(view)
        zero = torch.zeros((), dtype=gauss.dtype, device=gauss.device)
        low = torch.full((), -1.0, dtype=gauss.dtype, device=gauss.device)
        has_pos, has_neg = pos.any(1), neg.any(1)  # (B, 1, 1, 1)
        return [
            torch.where(pos, gauss, zero).amax(1),
            torch.where(neg, gauss, zero).amax(1),
            torch.where(has_pos, torch.where(pos, sim, low).amax(1), zero),
            torch.where(has_neg, torch.where(neg, sim, low).amax(1), zero),
        ]
