"""Tests of the synthetic whole-body PET generator (real SimpleITK images, real nnU-Net commands)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import SimpleITK as sitk
from scipy import ndimage

from seganypet_nnunet.synthetic import LABELS, SyntheticConfig, make_case, make_dataset
from seganypet_nnunet.synthetic.physics import FWHM_PER_SIGMA, gaussian_blur
from seganypet_nnunet.synthetic.uptake import FDG, PSMA


def _arrays(case):
    return sitk.GetArrayFromImage(case.pet), sitk.GetArrayFromImage(case.labels)


def _interior(labels: np.ndarray, name: str, iterations: int = 2) -> np.ndarray:
    return ndimage.binary_erosion(labels == LABELS[name], iterations=iterations)


@pytest.fixture(scope="module")
def whole_body_fdg():
    return make_case(11, SyntheticConfig(size="whole_body", max_lesions=0))


def test_fdg_organ_means_in_literature_ranges(whole_body_fdg):
    pet, labels = _arrays(whole_body_fdg)
    checks = {
        "liver": FDG.ranges["LIVER"],
        "spleen": FDG.ranges["SPLEEN"],
        "lung_left": FDG.ranges["LUNG"],
        "lung_right": FDG.ranges["LUNG"],
        "brain": (7.0, 10.5),
    }
    for name, (lo, hi) in checks.items():
        mask = _interior(labels, name)
        assert mask.sum() > 50, name
        measured = float(pet[mask].mean())
        assert 0.9 * lo <= measured <= 1.1 * hi, (name, measured)
        assert measured == pytest.approx(whole_body_fdg.truth["organ_suv"][name], rel=0.12), name
    aorta = whole_body_fdg.truth["organ_suv"]["aorta"]
    assert FDG.ranges["BLOOD"][0] * 0.9 <= aorta <= FDG.ranges["BLOOD"][1] * 1.1


def test_psma_profile_hot_kidneys_cold_brain():
    case = make_case(4, SyntheticConfig(tracer="psma", max_lesions=0))
    pet, labels = _arrays(case)
    kidney = pet[_interior(labels, "kidney_left", 1) | _interior(labels, "kidney_right", 1)].mean()
    liver = pet[_interior(labels, "liver")].mean()
    brain = pet[_interior(labels, "brain")].mean()
    assert kidney > 15 and brain < 1.0 and kidney > 3 * liver
    assert 0.8 * PSMA.ranges["LIVER"][0] <= liver <= 1.2 * PSMA.ranges["LIVER"][1]


@pytest.mark.parametrize("seed,size", [(0, "small"), (1, "small"), (2, "whole_body")])
def test_liver_noise_cov(seed, size):
    pet, labels = _arrays(make_case(seed, SyntheticConfig(size=size, max_lesions=0)))
    values = pet[_interior(labels, "liver")]
    cov = float(values.std() / values.mean())
    assert 0.08 <= cov <= 0.18, cov


def _fit_fwhm(case) -> float:
    """FWHM (mm) whose Gaussian blur of the true activity best matches the PET image (least squares)."""
    truth, pet = sitk.GetArrayFromImage(case.suv_true), sitk.GetArrayFromImage(case.pet)
    spacing = case.pet.GetSpacing()
    candidates = np.arange(3.0, 10.01, 0.25)
    errors = [float(np.mean((gaussian_blur(truth, spacing, f) - pet) ** 2)) for f in candidates]
    return float(candidates[int(np.argmin(errors))])


@pytest.mark.parametrize("count_level", [None, 30.0])
def test_blur_fwhm_matches_config(count_level):
    config = SyntheticConfig(spacing=(3.0, 3.0, 3.0), fwhm_mm=(6.5, 6.5), count_level=count_level, max_lesions=2)
    case = make_case(3, config)
    assert case.truth["fwhm_mm"] == pytest.approx(6.5)
    assert _fit_fwhm(case) == pytest.approx(6.5, abs=0.5)


def test_gaussian_blur_is_spacing_aware():
    point = np.zeros((41, 41, 41), np.float32)
    point[20, 20, 20] = 1.0
    spacing = (2.0, 2.5, 3.0)  # x, y, z
    blurred = gaussian_blur(point, spacing, 7.0)
    for axis, step in zip((2, 1, 0), spacing, strict=True):
        profile = blurred.sum(axis=tuple(a for a in range(3) if a != axis))
        pos = (np.arange(41) - 20) * step
        sigma = np.sqrt(np.sum(profile * pos**2) / profile.sum())
        assert sigma * FWHM_PER_SIGMA == pytest.approx(7.0, rel=0.08)


def test_one_grid_oblique_with_ct():
    case = make_case(5, SyntheticConfig(oblique=True, with_ct=True))
    images = [case.pet, case.ct, case.labels, case.instances, case.suv_true]
    for image in images[1:]:
        assert image.GetSize() == case.pet.GetSize()
        assert np.allclose(image.GetSpacing(), case.pet.GetSpacing())
        assert np.allclose(image.GetOrigin(), case.pet.GetOrigin())
        assert np.allclose(image.GetDirection(), case.pet.GetDirection())
    assert not np.allclose(np.reshape(case.pet.GetDirection(), (3, 3)), np.eye(3), atol=1e-3)
    assert case.pet.GetPixelID() == sitk.sitkFloat32 and case.labels.GetPixelID() == sitk.sitkUInt8
    assert case.instances.GetPixelID() == sitk.sitkUInt16
    ct, labels = sitk.GetArrayFromImage(case.ct), sitk.GetArrayFromImage(case.labels)
    assert ct[_interior(labels, "lung_left", 1)].mean() < -600
    assert 20 < ct[_interior(labels, "liver", 1)].mean() < 90
    assert make_case(5, SyntheticConfig()).ct is None


def test_deterministic_per_seed_and_patient():
    config = SyntheticConfig(max_lesions=3)
    a, b, c = make_case(8, config), make_case(8, config), make_case(9, config)
    assert np.array_equal(sitk.GetArrayFromImage(a.pet), sitk.GetArrayFromImage(b.pet))
    assert np.array_equal(sitk.GetArrayFromImage(a.labels), sitk.GetArrayFromImage(b.labels))
    assert a.truth == b.truth and a.patient_id == b.patient_id
    assert not np.array_equal(sitk.GetArrayFromImage(a.pet), sitk.GetArrayFromImage(c.pet))
    follow = make_case(80, config, patient_seed=8)
    assert follow.patient_id == a.patient_id != c.patient_id
    liver_a = (sitk.GetArrayFromImage(a.labels) == LABELS["liver"]).sum()
    liver_f = (sitk.GetArrayFromImage(follow.labels) == LABELS["liver"]).sum()
    liver_c = (sitk.GetArrayFromImage(c.labels) == LABELS["liver"]).sum()
    assert abs(liver_f - liver_a) / liver_a < 0.1 and liver_c != liver_a


@pytest.mark.parametrize("seed", range(6))
def test_lesion_instances_match_label(seed):
    case = make_case(seed, SyntheticConfig(max_lesions=6))
    labels, inst = sitk.GetArrayFromImage(case.labels), sitk.GetArrayFromImage(case.instances)
    assert np.array_equal(inst > 0, labels == LABELS["lesion"])
    ids = np.unique(inst[inst > 0])
    assert list(ids) == list(range(1, len(case.truth["lesions"]) + 1))
    voxel_ml = np.prod(case.pet.GetSpacing()) / 1000.0
    for record in case.truth["lesions"]:
        assert (inst == record["id"]).sum() * voxel_ml == pytest.approx(record["volume_ml"], abs=1e-3)
        assert 5.0 <= record["diameter_mm"] <= 40.0


def test_lesions_are_hot_on_average():
    suvs, background = [], []
    for seed in range(8):
        case = make_case(seed, SyntheticConfig(max_lesions=5))
        pet, inst = sitk.GetArrayFromImage(case.pet), sitk.GetArrayFromImage(case.instances)
        suvs += [pet[inst == r["id"]].max() for r in case.truth["lesions"] if r["diameter_mm"] > 15]
        background.append(np.median(pet[sitk.GetArrayFromImage(case.labels) == 0]))
    assert suvs and np.median(suvs) > 2.0 * max(background)


def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match="tracer"):
        SyntheticConfig(tracer="fluciclovine")
    with pytest.raises(ValueError, match="size"):
        SyntheticConfig(size="huge")
    with pytest.raises(ValueError, match="fwhm_mm"):
        SyntheticConfig(fwhm_mm=(7.0, 5.0))


def test_dataset_layout_and_patients(small_synthetic_raw):
    folder = small_synthetic_raw
    meta = json.loads((folder / "dataset.json").read_text())
    assert meta["channel_names"] == {"0": "PET"} and meta["labels"] == LABELS
    assert meta["numTraining"] == 6 and meta["file_ending"] == ".nii.gz"
    train = sorted(p.name[: -len("_0000.nii.gz")] for p in (folder / "imagesTr").glob("*_0000.nii.gz"))
    test = sorted(p.name[: -len("_0000.nii.gz")] for p in (folder / "imagesTs").glob("*_0000.nii.gz"))
    assert len(train) == 6 and len(test) == 2
    mapping = json.loads((folder / "case_to_patient.json").read_text())
    assert set(mapping) == set(train) | set(test)
    assert len({mapping[c] for c in train}) == 4
    assert not {mapping[c] for c in train} & {mapping[c] for c in test}
    for case in train:
        pet = sitk.ReadImage(str(folder / "imagesTr" / f"{case}_0000.nii.gz"))
        inst = sitk.ReadImage(str(folder / "instancesTr" / f"{case}.nii.gz"))
        lab = sitk.ReadImage(str(folder / "labelsTr" / f"{case}.nii.gz"))
        assert np.allclose(pet.GetOrigin(), lab.GetOrigin()) and np.allclose(pet.GetDirection(), inst.GetDirection())
        assert sitk.GetArrayFromImage(lab).max() <= max(LABELS.values())


def test_cli_writes_ct_channel_and_overwrites(tmp_path):
    exe = shutil.which("seganypet_make_synthetic")
    cmd = [exe] if exe else [sys.executable, "-m", "seganypet_nnunet.synthetic.cli"]
    args = [
        "-d",
        "903",
        "-n",
        "CliTest",
        "-num_train",
        "2",
        "-num_test",
        "1",
        "--small",
        "--ct",
        "--oblique",
        "-max_lesions",
        "2",
        "-seed",
        "3",
        "-o",
        str(tmp_path),
    ]
    for _ in range(2):  # second run overwrites in place
        subprocess.run(cmd + args, check=True, capture_output=True, text=True)
    folder = tmp_path / "Dataset903_CliTest"
    meta = json.loads((folder / "dataset.json").read_text())
    assert meta["channel_names"] == {"0": "PET", "1": "CT"}
    ct_files = sorted(p.name for p in (folder / "imagesTr").glob("*_0001.nii.gz"))
    assert len(ct_files) == 2 and len(list((folder / "imagesTs").glob("*_0001.nii.gz"))) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["Dataset903_CliTest"]  # no temp folders left
    again = make_dataset(903, "CliTest", 2, 1, SyntheticConfig(with_ct=True, oblique=True, max_lesions=2), 3, tmp_path)
    image = sitk.ReadImage(str(again / "imagesTr" / ct_files[0]))
    assert image.GetPixelID() == sitk.sitkInt16
    assert not np.allclose(np.reshape(image.GetDirection(), (3, 3)), np.eye(3), atol=1e-3)


@pytest.mark.slow
def test_nnunet_plan_and_preprocess_accepts_dataset(raw_dataset_in_env, nnunet_env):
    dataset_id, _ = raw_dataset_in_env
    exe = shutil.which("nnUNetv2_plan_and_preprocess")
    assert exe, "nnUNetv2_plan_and_preprocess is not on PATH"
    # nnU-Net 2.8.1's planner calls torch.set_num_threads(nnUNet_n_proc_DA), which rejects 0: planning needs >= 1.
    env = dict(os.environ, nnUNet_n_proc_DA="1")
    result = subprocess.run(
        [exe, "-d", str(dataset_id), "-c", "3d_fullres", "--verify_dataset_integrity", "-np", "1"],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    folder = nnunet_env.preprocessed / "Dataset901_SyntheticPETSmall"
    plans = json.loads((folder / "nnUNetPlans.json").read_text())
    assert "3d_fullres" in plans["configurations"]
    assert (
        len(list((folder / "nnUNetPlans_3d_fullres").glob("*.b2nd")))
        + len(list((folder / "nnUNetPlans_3d_fullres").glob("*.npz")))
        >= 6
    )
