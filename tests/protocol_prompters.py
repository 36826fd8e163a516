"""A real, deterministic Prompter for the autoPET protocol tests (no model): test_autopet_iv.py, test_autopet_v.py."""

from __future__ import annotations

import numpy as np
from scipy import ndimage


class CubePrompter:
    """Real, deterministic prompter: a click sets (positive) or clears (negative) the 3x3x3 cube around it; a
    scribble sets / clears the whole 26-connected reference component it touches. Logs every call."""

    def __init__(self, ref: np.ndarray | None = None) -> None:
        self.ref = ref
        self.log: list = []

    def start(self, initial: np.ndarray) -> None:
        self.log.append(("start", int(initial.sum())))
        self.mask = initial.copy()

    def click(self, coord_ijk, positive: bool) -> np.ndarray:
        self.log.append(("click", tuple(coord_ijk), positive))
        z, y, x = (int(c) for c in coord_ijk[::-1])
        self.mask[max(z - 1, 0) : z + 2, max(y - 1, 0) : y + 2, max(x - 1, 0) : x + 2] = positive
        return self.mask.copy()

    def scribble(self, mask_zyx: np.ndarray, positive: bool) -> np.ndarray:
        self.log.append(("scribble", int(mask_zyx.sum()), positive))
        target = self.ref if positive else self.mask
        labels, _ = ndimage.label(target, structure=np.ones((3, 3, 3)))
        ids = np.unique(labels[mask_zyx & target])
        self.mask = self.mask | np.isin(labels, ids[ids > 0]) if positive else self.mask & ~np.isin(labels, ids)
        return self.mask.copy()
