"""One target of a session: its prompts, logit buffer, exported mask, reader-region state and undo history.

Space: points, boxes, crops and the logit buffer are preprocessed voxel space, axes (P0, P1, P2); the exported mask
``mask_t`` is the transposed, uncropped array space (nnU-Net's ``shape_before_cropping``).

Memory (boxed.py): between interactions the logit buffer is held as the bounding box of its non-background voxels
(``compact()``, which the session calls after each change); reading ``logits`` expands it to full size again, exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from seganypet_nnunet.inference import reader_region as RR
from seganypet_nnunet.inference.boxed import BoxedCrop, BoxedMask
from seganypet_nnunet.inference.follow import Box, box_slices
from seganypet_nnunet.inference.undo import UndoHistory, UndoStep, pack, unpack


@dataclass
class Target:
    """One target: prompts in preprocessed voxel space (P0, P1, P2), its logit buffer and its undo history."""

    name: str
    history: UndoHistory
    points: list[tuple[np.ndarray, int]] = field(default_factory=list)
    box: tuple[np.ndarray, np.ndarray] | None = None
    crop: Box | None = None
    mask_prompt: bool = False  # add_mask seeded this target
    mask_t: BoxedMask | None = None  # uint8, transposed, uncropped array space (nnU-Net's shape_before_cropping)
    reader: RR.ReaderRegion | None = None  # the reader's region answered: corrections re-threshold (reader_region.py)
    _dense: np.ndarray | None = field(default=None, repr=False)  # the logit buffer while an interaction runs
    _boxed: BoxedCrop | None = field(default=None, repr=False)  # the logit buffer between interactions

    @property
    def logits(self) -> np.ndarray | None:
        """(P0, P1, P2) float32 logit buffer, preprocessed voxel space (None: no prompt yet); writable in place."""
        if self._dense is None and self._boxed is not None:
            self._dense, self._boxed = self._boxed.expand(), None
        return self._dense

    @logits.setter
    def logits(self, value: np.ndarray | None) -> None:
        self._dense, self._boxed = value, None

    def compact(self, background: float) -> None:
        """Hold the logit buffer as the box of its voxels != ``background`` until it is read again (exact)."""
        if self._dense is not None:
            self._dense, self._boxed = None, BoxedCrop(self._dense, background)

    @property
    def nbytes(self) -> int:
        """Bytes held by this target: logit buffer, exported mask and undo history."""
        logits = self._dense.nbytes if self._dense is not None else self._boxed.nbytes if self._boxed else 0
        return int(logits + (self.mask_t.nbytes if self.mask_t is not None else 0) + self.history.nbytes)

    def has_positive_prompt(self) -> bool:
        return self.box is not None or self.mask_prompt or any(label == 1 for _, label in self.points)

    def state(self) -> tuple:
        """What an undo step restores besides the logits: (number of points, box, crop, mask prompt flag, reader)."""
        return len(self.points), self.box, self.crop, self.mask_prompt, self.reader

    def push(self, state: tuple, blocks: Sequence[tuple[Box, bytes | None]]) -> None:
        """One undo step: ``state`` (from ``state()`` before the change) and the ``pack``ed logit blocks it overwrote
        (None: the target had no logit buffer)."""
        self.history.push(UndoStep(*state[:4], tuple(blocks), state[4]))

    def record(self, boxes: Sequence[Box]) -> None:
        """One undo step saving the current logits in ``boxes``; call before changing them."""
        logits = self.logits
        self.push(self.state(), [(bx, None if logits is None else pack(logits[box_slices(bx)])) for bx in boxes])

    def undo(self) -> list[Box] | None:
        """Reverts the newest step; returns the boxes whose logits it restored (None: nothing to undo)."""
        step = self.history.pop()
        if step is None:
            return None
        del self.points[step.n_points :]
        self.box, self.crop, self.mask_prompt, self.reader = step.box, step.crop, step.had_mask_prompt, step.reader
        for bx, old in reversed(step.blocks):
            if old is None:
                self.logits = None
            else:
                self.logits[box_slices(bx)] = unpack(old, bx)
        if not self.points and self.box is None and not self.mask_prompt:
            self.logits = None  # no prompt left (a PET prior seeded the buffer before the first click)
        return [bx for bx, _ in step.blocks]
