"""A session target's undo steps (``inference/target.py``) on a hand-made logit buffer."""

from __future__ import annotations

import numpy as np

from seganypet_nnunet.inference import reader_region as RR
from seganypet_nnunet.inference.target import Target
from seganypet_nnunet.inference.undo import UndoHistory, pack

FULL = ((0, 8), (0, 8), (0, 8))
CORNER = ((0, 4), (0, 4), (0, 4))


def test_undo_restores_the_recorded_blocks_points_and_state_in_reverse_order():
    t = Target("lesion", UndoHistory(depth=8, max_bytes=10**9))
    assert t.undo() is None  # nothing to undo
    t.record([FULL])  # the first click: no buffer yet
    t.points.append((np.zeros(3), 1))
    t.logits = np.full((8, 8, 8), -5.0, np.float32)
    t.logits[:4, :4, :4] = 5.0
    first = t.logits.copy()
    state = t.state()  # a second click changes one corner and starts the reader's mode
    t.points.append((np.ones(3), 0))
    t.reader = RR.ReaderRegion(10.0, 0.41, ((1, 1, 1),))
    t.logits[:4, :4, :4] = -5.0
    t.push(state, [(CORNER, pack(first[:4, :4, :4]))])
    assert t.undo() == [CORNER]
    np.testing.assert_array_equal(t.logits, first)
    assert len(t.points) == 1 and t.reader is None
    assert t.undo() == [FULL]
    assert t.logits is None and t.points == [] and not t.has_positive_prompt()
