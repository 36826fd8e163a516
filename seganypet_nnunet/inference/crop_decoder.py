"""The networks on one crop of the session's image: image embeddings cached per crop (least recently used evicted),
and the decoder run on a crop with a target's prompts, averaged over the fold networks.

Space: crops are half-open boxes in preprocessed voxel space, axes (P0, P1, P2); points and box corners given to
``decode`` are preprocessed voxels; inside, network-input voxel = preprocessed voxel - crop start. A box may leave the
image (a crop centred on a click near the border, ``follow.centred_box(clamp=False)``): the part outside is zero
(padding before the network's normalisation, as torchio's ``CropOrPad``). A crop smaller than the patch, at an image
smaller than the patch, is zero-padded at the high end.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Sequence

import numpy as np
import torch

from seganypet_nnunet.inference.follow import Box, box_slices, clip_box
from seganypet_nnunet.inference.revert import BACKGROUND_LOGIT
from seganypet_nnunet.prompts.types import Prompts


class CropDecoder:
    """Encoder-once, decoder-per-prompt access to the fold networks for one preprocessed image (``set_data``).

    Args:
        networks: the fold networks (``encode`` / ``decode`` contract, ``model/``), already on ``device``.
        patch: the patch size (P0, P1, P2) every crop is run at.
        device: torch device of the networks.
        cache_size: image embeddings (one per crop) kept in memory.
    """

    def __init__(self, networks: Sequence[torch.nn.Module], patch: Sequence[int], device, cache_size: int) -> None:
        self.networks, self.patch, self.device, self.cache_size = list(networks), tuple(patch), device, cache_size
        self._data: torch.Tensor | None = None
        self._cache: OrderedDict[Box, list] = OrderedDict()

    def set_data(self, data: torch.Tensor) -> None:
        """The (C, P0, P1, P2) preprocessed image the crops are taken from; forgets the cached embeddings."""
        self._data = data
        self._cache.clear()

    @property
    def has_data(self) -> bool:
        return self._data is not None

    @property
    def cached(self) -> int:
        """Image embeddings (one per crop) currently cached."""
        return len(self._cache)

    def clear(self) -> None:
        """Forget the cached image embeddings (the next decode re-runs the encoder)."""
        self._cache.clear()

    def embeddings(self, box: Box) -> list:
        """Image embeddings of one crop ``box``, one per fold network (cached)."""
        if box in self._cache:
            self._cache.move_to_end(box)
            return self._cache[box]
        inner = clip_box(box, self._data.shape[1:])
        part = self._data[(slice(None), *box_slices(inner))]
        x = part
        if tuple(part.shape[1:]) != self.patch:
            x = part.new_zeros((part.shape[0], *self.patch))
            x[(slice(None), *self._inside(box, inner))] = part
        with torch.no_grad():
            emb = [net.encode(x[None].to(self.device)) for net in self.networks]
        self._cache[box] = emb
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return emb

    @staticmethod
    def _inside(box: Box, inner: Box) -> tuple[slice, slice, slice]:
        """Where ``inner`` (the part of ``box`` inside the image) lies in the patch-size network input."""
        return tuple(slice(i - b, i - b + (j - i)) for (b, _), (i, j) in zip(box, inner, strict=True))

    def decode(
        self,
        crop_pre: Box,
        points_pre: Sequence[tuple[np.ndarray, int]],
        box_pre: tuple[np.ndarray, np.ndarray] | None,
        prev: np.ndarray,
    ) -> np.ndarray:
        """Logits of one crop ``crop_pre`` (shape of ``prev``, preprocessed voxel space) from the decoder.

        Args:
            crop_pre: half-open crop (P0, P1, P2).
            points_pre: [(preprocessed voxel (3,), label 1/0)]; those outside the crop are left out.
            box_pre: the box prompt, (min, max) preprocessed voxel corners, or None.
            prev: current logits of the part of ``crop_pre`` inside the image (the dense mask prompt).
        """
        inner = clip_box(crop_pre, self._data.shape[1:])
        at = self._inside(crop_pre, inner)
        start = np.array([a for a, _ in crop_pre], float)
        stop = np.array([b for _, b in crop_pre], float)
        points_net = [  # network-input voxel = preprocessed voxel - crop start
            (point_pre - start, lab)
            for point_pre, lab in points_pre
            if ((point_pre >= start - 0.5) & (point_pre < stop - 0.5)).all()
        ]
        kw: dict = {}
        if points_net:
            kw["points"] = torch.tensor(np.array([point_net for point_net, _ in points_net]), dtype=torch.float32)[None]
            kw["point_labels"] = torch.tensor([lab for _, lab in points_net], dtype=torch.int64)[None]
        if box_pre is not None:
            lo_net, hi_net = box_pre[0] - start, box_pre[1] - start
            hit = bool((hi_net >= 0).all() and (lo_net <= stop - start - 1).all())
            top = np.array(self.patch, float) - 1
            corners_net = np.stack([np.clip(lo_net, 0, top), np.clip(hi_net, 0, top)])
            kw["boxes"] = torch.tensor(corners_net, dtype=torch.float32)[None]
            kw["box_mask"] = torch.tensor([hit])
        dense = np.full(self.patch, BACKGROUND_LOGIT, np.float32)
        dense[at] = prev
        kw["mask"] = torch.from_numpy(dense)[None, None]
        kw["mask_present"] = torch.tensor([bool((prev > 0).any())])
        prompts = Prompts(**kw).to(self.device)
        with torch.no_grad():
            embeddings = self.embeddings(crop_pre)
            out = [net.decode(emb, prompts)[0] for net, emb in zip(self.networks, embeddings, strict=True)]
        logits = torch.stack(out).mean(0)[0, 0].float().cpu().numpy()
        return logits[at]
