"""Arrays stored by the bounding box of their non-background voxels: a session target costs its object, not its image.

A whole-body PET target is a few thousand voxels in a 54 M voxel image; storing its logit buffer and exported mask at
full size cost ~1.2 bytes per image voxel per target. Both are kept here as (box, crop) instead; the background value
outside the box is exact (the box covers every voxel that differs from it), so nothing changes but the memory.

Space: whatever space the caller's array is in (boxes are half-open, one (start, stop) pair per axis).
"""

from __future__ import annotations

import numpy as np

Box = tuple[tuple[int, int], ...]


def foreground_box(array: np.ndarray, background) -> Box | None:
    """Half-open box of the voxels of ``array`` that differ from ``background`` (None: there are none)."""
    hit = array != background
    box = []
    for axis in range(array.ndim):
        rows = np.flatnonzero(hit.any(axis=tuple(a for a in range(array.ndim) if a != axis)))
        if not len(rows):
            return None
        box.append((int(rows[0]), int(rows[-1]) + 1))
    return tuple(box)


def _slices(box: Box, offset: Box | None = None) -> tuple[slice, ...]:
    if offset is None:
        return tuple(slice(a, b) for a, b in box)
    return tuple(slice(a - o, b - o) for (a, b), (o, _) in zip(box, offset, strict=True))


def _bounds(key, shape) -> Box:
    if not isinstance(key, tuple) or len(key) != len(shape) or not all(isinstance(k, slice) for k in key):
        raise IndexError(f"BoxedMask takes one slice per axis, got {key!r}")
    out = []
    for k, n in zip(key, shape, strict=True):
        start, stop, step = k.indices(n)
        if step != 1:
            raise IndexError("BoxedMask: slices with a step are not supported")
        out.append((start, max(start, stop)))
    return tuple(out)


class BoxedCrop:
    """A full-size array frozen as (shape, dtype, background, box, crop); ``expand()`` gives the array back exactly."""

    __slots__ = ("shape", "dtype", "background", "box", "crop")

    def __init__(self, array: np.ndarray, background) -> None:
        self.shape, self.dtype, self.background = array.shape, array.dtype, background
        self.box = foreground_box(array, background)
        self.crop = None if self.box is None else array[_slices(self.box)].copy()

    def expand(self) -> np.ndarray:
        out = np.full(self.shape, self.background, self.dtype)
        if self.box is not None:
            out[_slices(self.box)] = self.crop
        return out

    @property
    def nbytes(self) -> int:
        return 0 if self.crop is None else int(self.crop.nbytes)


class BoxedMask:
    """A uint8 mask of ``shape`` (zero outside ``box``) written by slice assignment and read with ``full()``."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        self.shape = tuple(int(n) for n in shape)
        self.box: Box | None = None
        self.data: np.ndarray | None = None

    def __setitem__(self, key, value) -> None:
        dst = _bounds(key, self.shape)
        value = np.broadcast_to(np.asarray(value), tuple(b - a for a, b in dst))
        inner = foreground_box(value, 0)
        if inner is not None:
            self._grow(tuple((a + i, a + j) for (a, _), (i, j) in zip(dst, inner, strict=True)))
        if self.box is None:
            return  # zeros written into an empty mask
        part = tuple((max(a, c), min(b, d)) for (a, b), (c, d) in zip(dst, self.box, strict=True))
        if any(a >= b for a, b in part):
            return
        self.data[_slices(part, self.box)] = value[_slices(part, dst)]

    def _grow(self, need: Box) -> None:
        if self.box is None:
            self.box = need
            self.data = np.zeros(tuple(b - a for a, b in need), np.uint8)
            return
        new = tuple((min(a, c), max(b, d)) for (a, b), (c, d) in zip(self.box, need, strict=True))
        if new == self.box:
            return
        data = np.zeros(tuple(b - a for a, b in new), np.uint8)
        data[_slices(self.box, new)] = self.data
        self.box, self.data = new, data

    def __getitem__(self, key) -> np.ndarray:
        """The mask inside ``key`` (one slice per axis) as a new array."""
        want = _bounds(key, self.shape)
        out = np.zeros(tuple(b - a for a, b in want), np.uint8)
        if self.box is not None:
            part = tuple((max(a, c), min(b, d)) for (a, b), (c, d) in zip(want, self.box, strict=True))
            if all(a < b for a, b in part):
                out[_slices(part, want)] = self.data[_slices(part, self.box)]
        return out

    def full(self) -> np.ndarray:
        return self[tuple(slice(None) for _ in self.shape)]

    @property
    def nbytes(self) -> int:
        return 0 if self.data is None else int(self.data.nbytes)
