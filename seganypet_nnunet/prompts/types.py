"""The ``Prompts`` container passed to ``SegAnyPETNet.decode`` (see docs/DESIGN.md, Network contract)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Sequence

import torch

POSITIVE = 1
NEGATIVE = 0
PADDING = -1


@dataclass(frozen=True)
class Prompts:
    """Prompts for one batch of patches. All coordinates are in **network-input voxel** space.

    Attributes:
        points: (B, N, 3) float, voxel indices (centre at integer) in the axis order of the input tensor's spatial
            dims, or None for no points. N may be 0.
        point_labels: (B, N) int64: 1 positive, 0 negative, -1 padding (coordinates ignored). Required with points.
        boxes: (B, 2, 3) float, [min corner, max corner], inclusive voxel centres, same space/axis order, or None.
        box_mask: (B,) bool, which samples have a box; None with boxes means all of them.
        mask: (B, 1, *patch) float, previous mask **logits** (dense prompt), or None.
        mask_present: (B,) bool, which samples have a previous mask; None with mask means all of them.
    """

    points: torch.Tensor | None = None
    point_labels: torch.Tensor | None = None
    boxes: torch.Tensor | None = None
    box_mask: torch.Tensor | None = None
    mask: torch.Tensor | None = None
    mask_present: torch.Tensor | None = None

    def batch_size(self) -> int | None:
        """Batch size implied by the first non-None tensor, or None when everything is None."""
        for t in (self.points, self.boxes, self.mask):
            if t is not None:
                return int(t.shape[0])
        return None

    def validate(self, batch_size: int, patch_shape: Sequence[int], max_points: int | None = None) -> None:
        """Raises ValueError naming the field when a tensor has the wrong shape, dtype or values.

        Args:
            batch_size: expected B.
            patch_shape: spatial shape of the network input (3 ints, input-tensor axis order).
            max_points: upper bound on N, or None.
        """
        b = batch_size
        if (self.points is None) != (self.point_labels is None):
            raise ValueError("Prompts: points and point_labels must be given together")
        if self.points is not None:
            _check(self.points, "points", (b, None, 3), floating=True)
            _check(self.point_labels, "point_labels", (b, self.points.shape[1]), floating=False)
            if self.point_labels.dtype == torch.bool:
                raise ValueError("Prompts.point_labels must be int64 in {-1, 0, 1}, got bool")
            if self.point_labels.numel() and not bool(((self.point_labels >= -1) & (self.point_labels <= 1)).all()):
                raise ValueError("Prompts.point_labels values must be in {-1 padding, 0 negative, 1 positive}")
            if max_points is not None and self.points.shape[1] > max_points:
                raise ValueError(f"Prompts.points: {self.points.shape[1]} points exceed max_points={max_points}")
        if self.box_mask is not None and self.boxes is None:
            raise ValueError("Prompts: box_mask given without boxes")
        if self.boxes is not None:
            _check(self.boxes, "boxes", (b, 2, 3), floating=True)
            if self.box_mask is not None:
                _check(self.box_mask, "box_mask", (b,), floating=False, dtype=torch.bool)
        if self.mask_present is not None and self.mask is None:
            raise ValueError("Prompts: mask_present given without mask")
        if self.mask is not None:
            _check(self.mask, "mask", (b, 1, *patch_shape), floating=True)
            if self.mask_present is not None:
                _check(self.mask_present, "mask_present", (b,), floating=False, dtype=torch.bool)

    def to(self, device: torch.device | str) -> Prompts:
        """Returns a copy with every tensor moved to ``device``."""
        moved = {k: (v.to(device) if isinstance(v, torch.Tensor) else v) for k, v in self.__dict__.items()}
        return replace(self, **moved)


def _check(t: object, name: str, shape: tuple, *, floating: bool, dtype: torch.dtype | None = None) -> None:
    if not isinstance(t, torch.Tensor):
        raise ValueError(f"Prompts.{name} must be a torch.Tensor, got {type(t).__name__}")
    if t.ndim != len(shape) or any(s is not None and s != d for s, d in zip(shape, t.shape, strict=True)):
        want = tuple("N" if s is None else s for s in shape)
        raise ValueError(f"Prompts.{name} must have shape {want}, got {tuple(t.shape)}")
    if dtype is not None and t.dtype != dtype:
        raise ValueError(f"Prompts.{name} must have dtype {dtype}, got {t.dtype}")
    if floating != t.is_floating_point():
        raise ValueError(f"Prompts.{name} must be a {'floating' if floating else 'integer'} tensor, got {t.dtype}")
