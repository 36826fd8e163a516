"""SegAnyPETSession (real nnU-Net preprocessing, real untrained tiny network) and follow.py on a synthetic tube."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
from inference_data import new_session, shared_model
from scipy import ndimage

from seganypet_nnunet.inference import coordinates as C
from seganypet_nnunet.inference.follow import box_slices, centred_box, follow_object
from seganypet_nnunet.inference.revert import revert_full


@pytest.fixture(scope="module")
def model_paths(tmp_path_factory):
    """(raw dataset folder, read-only model folder), built once; each test makes its own session from them."""
    with pytest.MonkeyPatch.context() as mp:
        yield shared_model(tmp_path_factory, mp)


@pytest.fixture
def image_path(model_paths):
    return model_paths[0] / "imagesTs" / "test00_0000.nii.gz"


@pytest.fixture
def session(model_paths, image_path):
    """A session of this test's own, image set."""
    return new_session(model_paths[1], image_path)


def test_follow_closes_tube_longer_than_patch():
    shape, patch = (24, 24, 150), (16, 16, 32)
    image = np.zeros(shape, np.float32)
    image[8:14, 9:15, 5:140] = 1.0  # tube 135 voxels long, > 4 patches
    image[2:5, 2:5, 60:70] = 1.0  # separate object: must stay out
    seed = (11, 12, 20)

    def segment_crop(box, prev):  # real thresholding; keeps components touching the seed or the previous mask
        crop = image[box_slices(box)] > 0.5
        lab, _ = ndimage.label(crop)
        keep = prev > 0
        local = tuple(s - a for s, (a, _) in zip(seed, box, strict=False))
        if all(0 <= v < n for v, n in zip(local, crop.shape, strict=False)):
            keep[local] = True
        ids = np.unique(lab[keep & crop])
        return np.where(np.isin(lab, ids[ids > 0]), 5.0, -5.0)

    logits = np.full(shape, -5.0, np.float32)
    visited = follow_object(segment_crop, logits, centred_box(seed, patch, shape), patch, max_crops=20)
    mask = logits > 0
    assert len(visited) > 4
    assert mask[8:14, 9:15, 5:140].all()
    assert mask.sum() == 6 * 6 * 135
    one = np.full(shape, -5.0, np.float32)  # a single crop cannot close it
    follow_object(segment_crop, one, centred_box(seed, patch, shape), patch, max_crops=1)
    assert (one > 0).sum() < mask.sum()


def test_click_undo_reset_and_cache(session, image_path):
    s = session
    s.new_target("a")
    m1 = s.add_point((12, 18, 20), space="voxel")
    assert m1.shape == sitk.GetArrayFromImage(sitk.ReadImage(str(image_path))).shape and m1.dtype == np.uint8
    n_cache = s.cached_crops
    m2 = s.add_point((13, 17, 21), positive=False, space="voxel")
    assert s.cached_crops == n_cache  # correction inside the crop reuses the cached embedding
    assert not np.array_equal(m1, m2)
    np.testing.assert_array_equal(s.undo(), m1)
    assert s.reset().sum() == 0 and s.mask().sum() == 0
    np.testing.assert_array_equal(s.add_point((12, 18, 20), space="voxel"), m1)  # deterministic after reset


def test_world_click_equals_voxel_click_and_mask_matches_nnunet_export(session, image_path):
    s = session
    s.new_target("w")
    s.reset()
    mv = s.add_point((12, 18, 20), space="voxel")
    s.reset()
    world = C.voxel_to_world([12, 18, 20], s.reference)
    mw = s.add_point(tuple(world), space="world")
    np.testing.assert_array_equal(mv, mw)
    full = revert_full(s.logits("w"), s.geometry, s.model.configuration_manager, s.properties) > 0
    np.testing.assert_array_equal(mw, full.astype(np.uint8))  # region export == nnU-Net's whole-image export
    img = s.mask_image()
    ref = sitk.ReadImage(str(image_path))
    assert img.GetDirection() == pytest.approx(ref.GetDirection())
    assert img.GetSpacing() == pytest.approx(ref.GetSpacing())


def test_targets_are_separate_and_label_map(session):
    s = session
    s.new_target("t1")
    s.reset()
    m1 = s.add_point((6, 10, 10), space="voxel")
    s.new_target("t2")
    s.reset()
    s.add_point((16, 25, 30), space="voxel")
    np.testing.assert_array_equal(s.mask("t1"), m1)  # t2's prompts did not touch t1
    s.new_target("t1")
    assert s.current_target == "t1"
    labels, names = s.label_map()
    assert list(names.values())[-2:] == ["t1", "t2"]
    ids = {v: k for k, v in names.items()}
    assert ((labels == ids["t2"]) == (s.mask("t2") > 0)).all()


def test_mask_scribble_box_and_errors(session):
    s = session
    s.new_target("m")
    s.reset()
    want = np.zeros(s.array_shape, np.uint8)
    want[10:30, 12:28, 6:18] = 1
    got = s.add_mask(want)
    dice = 2 * (got & want).sum() / (got.sum() + want.sum())
    assert dice > 0.9
    s.add_scribble([[10, 15, 18], [12, 16, 19]], positive=False, space="voxel")
    s.add_box([5, 8, 10], [15, 20, 25], space="voxel")
    assert s.undo_steps == 3
    with pytest.raises(ValueError, match="outside"):
        s.add_point((100, 0, 0), space="voxel")
    with pytest.raises(ValueError, match="3 finite"):
        s.add_point((1, 2), space="voxel")
    with pytest.raises(ValueError, match="space"):
        s.add_point((1, 2, 3), space="pixels")
    with pytest.raises(ValueError, match="mask shape"):
        s.add_mask(np.zeros((3, 3, 3)))


def test_returned_masks_do_not_share_memory_with_the_session(session):
    s = session
    s.new_target("a")
    first = s.add_point((12, 18, 20), space="voxel")
    kept = first.copy()
    second = s.add_point((13, 17, 21), positive=False, space="voxel")
    assert not np.array_equal(kept, second)  # the session's mask changed ...
    np.testing.assert_array_equal(first, kept)  # ... the array the caller kept did not
    current = s.mask()
    second[:] = 1  # writing into a returned mask cannot corrupt the session
    first[:] = 1
    np.testing.assert_array_equal(s.mask(), current)
    labels, _ = s.label_map()
    np.testing.assert_array_equal(labels > 0, current > 0)


def test_undo_history_is_bounded_by_depth_and_bytes(model_paths, image_path):
    clicks = [(12, 18, 20), (13, 17, 21), (11, 19, 19), (12, 16, 22), (14, 18, 20)]
    s = new_session(model_paths[1], image_path, undo_depth=2)
    masks = [s.add_point(c, positive=i % 2 == 0, space="voxel") for i, c in enumerate(clicks)]
    assert s.undo_steps == 2
    np.testing.assert_array_equal(s.undo(), masks[3])
    np.testing.assert_array_equal(s.undo(), masks[2])
    np.testing.assert_array_equal(s.undo(), masks[2])  # older steps were dropped: nothing left to undo
    assert s.undo_steps == 0 and s.undo_nbytes == 0

    s = new_session(model_paths[1], image_path)
    for i, c in enumerate(clicks):
        s.add_point(c, positive=i % 2 == 0, space="voxel")
    assert s.undo_steps == len(clicks)
    per_step = s.undo_nbytes / s.undo_steps
    budget = int(2.5 * per_step)
    s = new_session(model_paths[1], image_path, undo_bytes=budget)
    for i, c in enumerate(clicks):
        s.add_point(c, positive=i % 2 == 0, space="voxel")
        assert s.undo_nbytes <= budget
    assert 0 < s.undo_steps < len(clicks)
    with pytest.raises(ValueError, match="undo"):
        new_session(model_paths[1], undo_depth=-1)


def test_bad_images_and_prompts_are_rejected_with_one_line(session, image_path, tmp_path):
    s = session
    pet = sitk.ReadImage(str(image_path))
    arr = sitk.GetArrayFromImage(pet)
    arr[5, 5, 5] = np.nan
    arr[6, 6, 6] = np.inf
    with pytest.raises(ValueError, match="2 NaN or Inf voxel"):
        s.set_image((arr, pet))
    truncated = tmp_path / "cut_0000.nii.gz"
    truncated.write_bytes(image_path.read_bytes()[:2000])
    with pytest.raises(ValueError, match="truncated") as err:
        s.set_image(str(truncated))
    assert "\n" not in str(err.value)
    garbage = tmp_path / "garbage_0000.nii.gz"
    garbage.write_bytes(b"not an image")
    with pytest.raises(ValueError, match="garbage_0000") as err:
        s.set_image(str(garbage))
    assert "\n" not in str(err.value)
    s.set_image(str(image_path))
    s.new_target("a")
    with pytest.raises(ValueError, match="exceeds max on axis 1|exceeds max .* on axis 1"):
        s.add_box([2, 9, 3], [10, 8, 12], space="voxel")
    with pytest.raises(ValueError, match=r"no positive prompt yet"):
        s.add_point((12, 18, 20), positive=False, space="voxel")
    with pytest.raises(ValueError, match=r"no positive prompt yet"):
        s.add_scribble([[12, 18, 20]], positive=False, space="voxel")
    with pytest.raises(ValueError, match=r"unknown target 'liver'; known targets: \['a'\]"):
        s.mask("liver")
    too_many = [[10 + (i % 4), 15 + (i // 4) % 4, 18] for i in range(s.max_points + 1)]
    with pytest.raises(ValueError, match=f"accepts at most {s.max_points}"):
        s.add_scribble(too_many, space="voxel")
    assert s.undo_steps == 0 and s.mask().sum() == 0  # nothing was applied
    s.add_point((12, 18, 20), space="voxel")
    s.add_point((13, 17, 21), positive=False, space="voxel")  # negative after a positive is fine


def test_click_bounds_follow_the_voxel_centre_rule(session):
    s = session
    size = np.array(s.image_size_ijk, float)
    s.new_target("edges")
    s.add_point((-0.5, -0.5, -0.5), space="voxel")  # the image's physical corner is inside
    s.add_point(tuple(size - 0.5), space="voxel")
    s.add_box([-0.5, 0, 0], list(size - 0.5), space="voxel")
    for outside in ((-0.51, 3, 3), (3, size[1] - 0.49, 3)):
        with pytest.raises(ValueError, match="outside the image"):
            s.add_point(outside, space="voxel")
    with pytest.raises(ValueError, match="outside the image"):
        s.add_box([0, 0, 0], [3, 3, size[2]], space="voxel")
