"""Bounded undo history of one session target: one small typed step per interaction, overwritten logits compressed.

Like nnInteractive's undo, a step keeps only the logit blocks an interaction overwrote (preprocessed voxel space,
axes (P0, P1, P2)), compressed losslessly; the history keeps at most ``depth`` steps and ``max_bytes`` compressed
bytes, dropping the oldest steps first (a step larger than ``max_bytes`` on its own is not kept).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

Box = tuple[tuple[int, int], tuple[int, int], tuple[int, int]]


def pack(logits: np.ndarray) -> bytes:
    """Lossless compression of a float32 logit block: byte planes split (sign/exponent bytes of neighbouring voxels
    repeat), then zlib. A background-filled block shrinks several hundred times."""
    planes = np.ascontiguousarray(logits, np.float32).reshape(-1).view(np.uint8).reshape(-1, 4).T
    return zlib.compress(np.ascontiguousarray(planes).tobytes(), 1)


def unpack(data: bytes, box: Box) -> np.ndarray:
    """Inverse of ``pack`` for a block of ``box``'s shape (half-open box, preprocessed voxel space)."""
    planes = np.frombuffer(zlib.decompress(data), np.uint8).reshape(4, -1)
    return np.ascontiguousarray(planes.T).view(np.float32).reshape(tuple(b - a for a, b in box))


@dataclass(frozen=True)
class UndoStep:
    """What one interaction changed, enough to revert it.

    Attributes:
        n_points: number of points the target had before the interaction.
        box: the target's box before it ((min, max) preprocessed voxel corners) or None.
        crop: the target's last crop before it (half-open preprocessed voxel box) or None.
        had_mask_prompt: whether ``add_mask`` had seeded the target before it.
        blocks: per overwritten preprocessed box, the old logits (``pack``ed), or None when the target had no logit
            buffer yet.
        reader: the target's reader-region state before it (``reader_region.ReaderRegion``) or None.
    """

    n_points: int
    box: tuple[np.ndarray, np.ndarray] | None
    crop: Box | None
    had_mask_prompt: bool
    blocks: tuple[tuple[Box, bytes | None], ...]
    reader: object = None

    @property
    def nbytes(self) -> int:
        """Bytes held by the compressed blocks."""
        return sum(len(b) for _, b in self.blocks if b is not None)


class UndoHistory:
    """Last-in first-out steps, bounded by count and by compressed bytes (oldest dropped first)."""

    def __init__(self, depth: int, max_bytes: int) -> None:
        if depth < 0 or max_bytes < 0:
            raise ValueError(f"undo depth and bytes must be >= 0, got {depth} and {max_bytes}")
        self.depth, self.max_bytes = depth, max_bytes
        self._steps: list[UndoStep] = []
        self.nbytes = 0

    def __len__(self) -> int:
        return len(self._steps)

    def push(self, step: UndoStep) -> None:
        """Adds ``step`` and drops the oldest steps until both bounds hold."""
        self._steps.append(step)
        self.nbytes += step.nbytes
        while self._steps and (len(self._steps) > self.depth or self.nbytes > self.max_bytes):
            self.nbytes -= self._steps.pop(0).nbytes

    def pop(self) -> UndoStep | None:
        """The newest step (removed), or None when the history is empty."""
        if not self._steps:
            return None
        step = self._steps.pop()
        self.nbytes -= step.nbytes
        return step
