"""boxed.py: box-stored masks and logit buffers read back exactly what a full-size array would hold."""

from __future__ import annotations

import numpy as np
import pytest

from seganypet_nnunet.inference.boxed import BoxedCrop, BoxedMask, foreground_box


def test_boxed_mask_equals_a_full_array_under_random_writes():
    rng = np.random.default_rng(0)
    shape = (20, 17, 23)
    ref, boxed = np.zeros(shape, np.uint8), BoxedMask(shape)
    for _ in range(60):
        lo = rng.integers(0, shape)
        hi = lo + rng.integers(1, 8, 3)
        key = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
        block = rng.random(ref[key].shape) < rng.choice([0.0, 0.05, 0.5])
        ref[key] = block
        boxed[key] = block
        np.testing.assert_array_equal(boxed.full(), ref)
    assert boxed.nbytes <= ref.nbytes
    np.testing.assert_array_equal(boxed[2:9, :, 4:], ref[2:9, :, 4:])
    with pytest.raises(IndexError):
        boxed[::2, :, :] = 0


def test_boxed_mask_of_a_small_object_is_small():
    boxed = BoxedMask((300, 300, 600))
    boxed[100:200, 100:200, 100:200] = np.zeros((100, 100, 100), bool)  # zeros into an empty mask: nothing stored
    assert boxed.nbytes == 0 and boxed.box is None
    boxed[150:160, 150:170, 150:155] = 1
    assert boxed.box == ((150, 160), (150, 170), (150, 155)) and boxed.nbytes == 10 * 20 * 5


def test_boxed_crop_expands_exactly():
    a = np.full((9, 8, 7), -10.0, np.float32)
    assert foreground_box(a, -10.0) is None and BoxedCrop(a, -10.0).nbytes == 0
    a[2:4, 5, 1:6] = np.linspace(-3, 3, 10, dtype=np.float32).reshape(2, 5)
    c = BoxedCrop(a, -10.0)
    assert c.box == ((2, 4), (5, 6), (1, 6)) and c.nbytes == 2 * 1 * 5 * 4
    np.testing.assert_array_equal(c.expand(), a)


def test_a_session_target_holds_its_box_not_the_image(model):
    from inference_data import new_session

    s = new_session(model[1], model[0] / "imagesTs" / "test00_0000.nii.gz")
    s.new_target("a")
    first = s.add_point((12, 18, 20), space="voxel")
    t = s._targets["a"]
    full = np.prod(s.geometry.preprocessed_shape) * 4 + np.prod(s.array_shape)
    assert t._dense is None and t.nbytes < full  # compacted between interactions
    logits = s.logits()
    assert logits.shape == tuple(s.geometry.preprocessed_shape) and t._dense is None
    s.add_point((13, 17, 21), positive=False, space="voxel")
    np.testing.assert_array_equal(s.undo(), first)
    np.testing.assert_array_equal(s.logits(), logits)
