"""Label corruption ops on hand-made masks, and the corrupted synthetic dataset (test labels stay clean)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import SimpleITK as sitk
from scipy import ndimage

from seganypet_nnunet.synthetic import SyntheticConfig, make_dataset
from seganypet_nnunet.synthetic.corruption import (
    LabelCorruption,
    boundary_offset,
    corrupt_label_map,
    dilate_erode,
    remove_part,
    shift,
    signed_distance,
)


def _cube(size: int = 20, lo: int = 6, hi: int = 14) -> np.ndarray:
    mask = np.zeros((size,) * 3, bool)
    mask[lo:hi, lo:hi, lo:hi] = True
    return mask


def test_dilation_and_erosion_by_whole_voxels():
    cube = _cube()
    grown = dilate_erode(cube, voxels=1)
    assert grown.sum() == 8**3 + 6 * 8**2  # one voxel of Euclidean distance: the six faces, no edges
    assert (dilate_erode(cube, voxels=-2) == _cube(lo=8, hi=12)).all()
    assert dilate_erode(cube, voxels=3)[6 - 3, 10, 10] and not dilate_erode(cube, voxels=3)[6 - 4, 10, 10]
    assert not dilate_erode(_cube(lo=9, hi=11), voxels=-1).any()  # a 2-voxel-thick structure vanishes


def test_shift_moves_and_clips():
    cube = _cube()
    moved = shift(cube, offset=(2, 0, -3))
    assert (moved == _cube_at((8, 16), (6, 14), (3, 11))).all()
    assert (shift(cube, offset=(10, 0, 0)) == _cube_at((16, 20), (6, 14), (6, 14))).all()  # the rest left the grid


def _cube_at(a, b, c) -> np.ndarray:
    mask = np.zeros((20,) * 3, bool)
    mask[a[0] : a[1], b[0] : b[1], c[0] : c[1]] = True
    return mask


def test_missing_part_cuts_a_slab():
    cube = _cube()
    out = remove_part(cube, axis=2, fraction=0.25, from_high=True)
    assert (out == _cube_at((6, 14), (6, 14), (6, 12))).all()
    out = remove_part(cube, axis=0, fraction=0.5, from_high=False)
    assert (out == _cube_at((10, 14), (6, 14), (6, 14))).all()


def test_boundary_offset_changes_only_a_band_around_the_boundary():
    ball = ndimage.distance_transform_edt(~_cube(lo=10, hi=11)) <= 6
    out = boundary_offset(ball, max_offset=2.0, smoothness=3.0, rng=np.random.default_rng(0))
    changed = out != ball
    assert changed.any() and (out & ~ball).any() and (ball & ~out).any()  # moved both out and in
    assert np.abs(signed_distance(ball)[changed]).max() < 2.0  # half-way distances: at most 1.5 voxels deep


def test_corrupt_label_map_keeps_labels_and_records_the_kind():
    labels = np.zeros((20, 20, 20), np.uint8)
    labels[_cube(lo=3, hi=9)] = 3
    labels[_cube(lo=11, hi=17)] = 11
    seen = set()
    for seed in range(12):
        out, record = corrupt_label_map(labels, spacing=(2.0, 2.0, 2.0), rng=np.random.default_rng(seed))
        seen.add(record["kind"])
        assert out.dtype == labels.dtype and set(np.unique(out)) <= {0, 3, 11}
        assert (out != labels).any(), record
    assert seen == {"dilate_erode", "shift", "missing_part", "boundary_offset"}
    with pytest.raises(ValueError, match="kinds"):
        LabelCorruption(kinds=("blur",))


def test_make_dataset_corrupts_a_fraction_of_training_cases_only(tmp_path):
    corruption = LabelCorruption(fraction=0.5, seed=3)
    clean = make_dataset(950, "Clean", 4, 1, SyntheticConfig(max_lesions=1), 0, tmp_path / "a")
    noisy = make_dataset(950, "Clean", 4, 1, SyntheticConfig(max_lesions=1), 0, tmp_path / "b", corruption=corruption)
    low = json.loads((noisy / "low_quality_cases.json").read_text())
    records = json.loads((noisy / "label_corruption.json").read_text())
    assert len(low) == 2 and sorted(records) == low

    def arr(folder, split, case):
        return sitk.GetArrayFromImage(sitk.ReadImage(str(folder / f"labels{split}" / f"{case}.nii.gz")))

    for path in sorted((clean / "labelsTr").glob("*.nii.gz")):
        case = path.name[: -len(".nii.gz")]
        assert (arr(clean, "Tr", case) != arr(noisy, "Tr", case)).any() == (case in low)
    for path in sorted((clean / "labelsTs").glob("*.nii.gz")):
        case = path.name[: -len(".nii.gz")]
        assert (arr(clean, "Ts", case) == arr(noisy, "Ts", case)).all()
