"""Undo steps: lossless compressed blocks and a history bounded by depth and bytes."""

from __future__ import annotations

import numpy as np
import pytest

from seganypet_nnunet.inference.undo import UndoHistory, UndoStep, pack, unpack


def _step(nbytes_of: np.ndarray) -> UndoStep:
    box = tuple((0, n) for n in nbytes_of.shape)
    return UndoStep(0, None, None, False, ((box, pack(nbytes_of)),))


def test_pack_is_lossless_and_compresses_background():
    rng = np.random.default_rng(0)
    box = ((2, 18), (0, 16), (5, 37))
    noisy = rng.normal(size=(16, 16, 32)).astype(np.float32)
    np.testing.assert_array_equal(unpack(pack(noisy), box), noisy)  # bit-exact, also for noise
    background = np.full((16, 16, 32), -10.0, np.float32)
    background[4:8, 4:8, 4:8] = 10.0
    assert len(pack(background)) < background.nbytes / 100
    smooth = np.linspace(-10, 10, background.size, dtype=np.float32).reshape(background.shape)
    assert len(pack(smooth)) < smooth.nbytes / 2


def test_history_bounds_and_lifo_order():
    blocks = [np.full((8, 8, 8), float(i), np.float32) for i in range(6)]
    h = UndoHistory(depth=3, max_bytes=10**9)
    for b in blocks:
        h.push(_step(b))
    assert len(h) == 3
    assert [unpack(h.pop().blocks[0][1], ((0, 8),) * 3)[0, 0, 0] for _ in range(3)] == [5.0, 4.0, 3.0]
    assert h.pop() is None and h.nbytes == 0

    one = _step(blocks[0]).nbytes
    h = UndoHistory(depth=100, max_bytes=2 * one)
    for _ in blocks:
        h.push(_step(blocks[0]))
        assert h.nbytes <= 2 * one
    assert len(h) == 2
    h = UndoHistory(depth=100, max_bytes=one - 1)  # a step larger than the budget is not kept
    h.push(_step(blocks[0]))
    assert len(h) == 0 and h.nbytes == 0
    with pytest.raises(ValueError, match="undo depth"):
        UndoHistory(depth=-1, max_bytes=0)
