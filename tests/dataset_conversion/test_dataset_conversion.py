"""Converters: layouts, geometry, channel order, labels, grouped splits, idempotence, untouched sources, bad inputs."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from conversion_fixtures import (
    AUTOPET_IV_CASES,
    AUTOPET_STUDIES,
    GENERIC_CASES,
    OBLIQUE_PATIENT,
    ROTATION_20,
    autopet_fdg_case,
    autopet_iv_case,
    generic_case,
    is_oblique,
    make_autopet_fdg,
    make_autopet_iv,
    make_autopet_organ,
    make_generic,
    make_hecktor,
    tree_hash,
    write,
)

from seganypet_nnunet.dataset_conversion.autopet_clicks import parse_autopet_clicks
from seganypet_nnunet.dataset_conversion.common import ConversionError, geometry_difference
from seganypet_nnunet.dataset_conversion.Dataset221_AutoPET_FDG import autopet_case_id, convert_autopet_fdg
from seganypet_nnunet.dataset_conversion.Dataset224_AutoPET_IV import convert_autopet_iv
from seganypet_nnunet.dataset_conversion.Dataset225_AutoPET_Organ import convert_autopet_organ
from seganypet_nnunet.dataset_conversion.Dataset226_HECKTOR import convert_hecktor
from seganypet_nnunet.dataset_conversion.generic_folder import convert_generic_folder
from seganypet_nnunet.splits import patient_grouped_splits
from seganypet_nnunet.synthetic import LABELS


def _read(path: Path) -> sitk.Image:
    return sitk.ReadImage(str(path))


def _mtimes(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file()}


def _check_splits(folder: Path, case_to_patient: dict[str, str]) -> None:
    splits = json.loads((folder / "splits_final.json").read_text())
    vals = [c for s in splits for c in s["val"]]
    assert sorted(vals) == sorted(case_to_patient)  # every case validated exactly once
    for split in splits:
        assert not {case_to_patient[c] for c in split["val"]} & {case_to_patient[c] for c in split["train"]}


# ------------------------------------------------------------------------------------------------ autoPET FDG
def test_autopet_fdg_layout_geometry_splits_idempotent(tmp_path, monkeypatch, synthetic_cases):
    src = tmp_path / "FDG-PET-CT-Lesions"
    studies = make_autopet_fdg(src, synthetic_cases)
    before = tree_hash(src)
    monkeypatch.setenv("nnUNet_preprocessed", str(tmp_path / "pre"))
    folder = convert_autopet_fdg(src, 501, tmp_path / "raw")
    assert folder.name == "Dataset501_AutoPET_FDG"
    ds = json.loads((folder / "dataset.json").read_text())
    assert ds["channel_names"] == {"0": "PET", "1": "CT"} and ds["labels"] == {"background": 0, "lesion": 1}
    assert ds["numTraining"] == len(studies)
    c2p = json.loads((folder / "case_to_patient.json").read_text())
    for key, study in studies.items():
        patient, name = key.split("/")
        case = autopet_case_id(patient, name)
        assert c2p[case] == patient and " " not in case and "." not in case
        pet, ct = _read(folder / "imagesTr" / f"{case}_0000.nii.gz"), _read(folder / "imagesTr" / f"{case}_0001.nii.gz")
        label = _read(folder / "labelsTr" / f"{case}.nii.gz")
        src_suv, src_ct = _read(study / "SUV.nii.gz"), _read(study / "CTres.nii.gz")
        assert np.array_equal(sitk.GetArrayFromImage(pet), sitk.GetArrayFromImage(src_suv))  # PET first
        assert np.array_equal(sitk.GetArrayFromImage(ct), sitk.GetArrayFromImage(src_ct))
        assert geometry_difference(label, src_suv) is None and geometry_difference(pet, src_suv) is None
        assert set(np.unique(sitk.GetArrayFromImage(label))) == {0, 1}
        generated = autopet_fdg_case(synthetic_cases, patient, AUTOPET_STUDIES[patient].index(name))
        assert np.array_equal(sitk.GetArrayFromImage(label) == 1, generated.label_array == LABELS["lesion"])
        assert label.GetSize() == generated.pet.GetSize()
        assert np.allclose(label.GetSpacing(), generated.pet.GetSpacing())
    oblique_case = autopet_case_id(OBLIQUE_PATIENT, AUTOPET_STUDIES[OBLIQUE_PATIENT][0])
    oblique_direction = _read(folder / "labelsTr" / f"{oblique_case}.nii.gz").GetDirection()
    assert is_oblique(oblique_direction)
    assert np.allclose(oblique_direction, autopet_fdg_case(synthetic_cases, OBLIQUE_PATIENT, 0).pet.GetDirection())
    _check_splits(folder, c2p)
    pre = tmp_path / "pre" / folder.name / "splits_final.json"
    assert json.loads(pre.read_text()) == json.loads((folder / "splits_final.json").read_text())
    stamps = _mtimes(folder)
    convert_autopet_fdg(src, 501, tmp_path / "raw")  # re-run: identical outputs are skipped
    assert _mtimes(folder) == stamps
    assert tree_hash(src) == before


def test_grouped_splits_never_split_a_patient():
    c2p = {f"c{i}": f"p{i % 7}" for i in range(40)}
    splits = patient_grouped_splits(sorted(c2p), c2p, 5)
    assert len(splits) == 5
    for split in splits:
        assert not {c2p[c] for c in split["val"]} & {c2p[c] for c in split["train"]}
        assert len(split["train"]) + len(split["val"]) == 40


# ------------------------------------------------------------------------------------------------ autoPET IV
def test_autopet_iv_reorders_channels_and_writes_prompts(tmp_path, synthetic_cases):
    src = tmp_path / "autopet_iv"
    clicks = make_autopet_iv(src, synthetic_cases)
    before = tree_hash(src)
    folder = convert_autopet_iv(src, 502, tmp_path / "raw", click_dir=src / "clicks")
    for case in AUTOPET_IV_CASES:
        ours_pet = sitk.GetArrayFromImage(_read(folder / "imagesTr" / f"{case}_0000.nii.gz"))
        theirs_pet = sitk.GetArrayFromImage(_read(src / "imagesTr" / f"{case}_0001.nii.gz"))
        ours_ct = sitk.GetArrayFromImage(_read(folder / "imagesTr" / f"{case}_0001.nii.gz"))
        assert np.array_equal(ours_pet, theirs_pet) and np.array_equal(
            ours_ct, sitk.GetArrayFromImage(_read(src / "imagesTr" / f"{case}_0000.nii.gz"))
        )
        assert np.array_equal(ours_pet, sitk.GetArrayFromImage(autopet_iv_case(synthetic_cases, case).pet))
    tracers = json.loads((folder / "case_to_tracer.json").read_text())
    assert tracers == {c: c.split("_")[0] for c in AUTOPET_IV_CASES}
    c2p = json.loads((folder / "case_to_patient.json").read_text())
    assert c2p[AUTOPET_IV_CASES[0]] == c2p[AUTOPET_IV_CASES[1]] == "0b98dbe00d"
    _check_splits(folder, c2p)
    prompts = json.loads((folder / "prompts.json").read_text())
    assert prompts["schema"] == "seganypet-prompts/1"
    for case in (AUTOPET_IV_CASES[0], AUTOPET_IV_CASES[2]):  # repository form, grand-challenge form
        points = prompts["cases"][case]["targets"][0]["points"]
        assert [(p["coord"], p["positive"]) for p in points] == clicks[case]
        assert {p["space"] for p in points} == {"voxel"} and any(p["positive"] for p in points)
        label = _read(folder / "labelsTr" / f"{case}.nii.gz")
        for p in points:  # lesion-centroid clicks hit the lesion, background clicks do not
            assert label.GetPixel(p["coord"]) == int(p["positive"])
    assert AUTOPET_IV_CASES[1] not in prompts["cases"]
    assert tree_hash(src) == before


@pytest.mark.parametrize(
    "content, message",
    [
        ("{not json", "unreadable click JSON"),
        (json.dumps({"tumor": [[1, 2, 99]]}), "outside the image"),
        (json.dumps({"tumor": [[1, 2]]}), "not a list of 3 numbers"),
        (json.dumps({"points": [{"point": [1, 1, 1], "name": "kidney"}]}), "unknown click name"),
        (json.dumps({"clicks": []}), "not an autoPET IV click file"),
    ],
)
def test_click_json_bad_inputs(tmp_path, content, message, synthetic_cases):
    pet = autopet_iv_case(synthetic_cases, AUTOPET_IV_CASES[0]).pet
    assert pet.GetSize()[2] <= 99
    path = tmp_path / "clicks.json"
    path.write_text(content)
    with pytest.raises(ConversionError, match=message) as err:
        parse_autopet_clicks(path, pet)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


# ---------------------------------------------------------------------------------------------- AutoPET-Organ
def test_autopet_organ_join_and_alias(tmp_path, synthetic_cases):
    label_files = make_autopet_organ(tmp_path / "organ", tmp_path / "fdg", synthetic_cases)
    before = [tree_hash(tmp_path / "organ"), tree_hash(tmp_path / "fdg")]
    folder = convert_autopet_organ(tmp_path / "organ", tmp_path / "fdg", 503, tmp_path / "raw")
    ds = json.loads((folder / "dataset.json").read_text())
    assert ds["labels"]["lung_middle_lobe_right"] == 11 and len(ds["labels"]) == 12
    assert ds["channel_names"] == {"0": "PET"} and ds["numTraining"] == len(label_files)
    seen_src, seen_out = set(), set()
    for path in label_files:
        patient, rest = path.name.split("_", 2)[:2], path.name.split("_", 2)[2]
        case = autopet_case_id("_".join(patient), rest[: -len("_.nii.gz")])
        out = sitk.GetArrayFromImage(_read(folder / "labelsTr" / f"{case}.nii.gz"))
        src = sitk.GetArrayFromImage(_read(path))
        assert out.max() <= 11 and np.array_equal(out, np.where(src == 12, 11, src))
        generated = autopet_fdg_case(
            synthetic_cases, "_".join(patient), AUTOPET_STUDIES["_".join(patient)].index(rest[: -len("_.nii.gz")])
        )
        gen = generated.label_array
        for name, organ_id in (("liver", 1), ("kidney_left", 2), ("kidney_right", 3), ("heart", 4), ("spleen", 5),
                               ("aorta", 6)):  # fmt: skip
            assert np.array_equal(out == organ_id, gen == LABELS[name])
        assert np.array_equal(np.isin(out, [7, 9]), gen == LABELS["lung_left"])
        assert np.array_equal(np.isin(out, [8, 10, 11]), gen == LABELS["lung_right"])
        seen_src |= set(np.unique(src).tolist())
        seen_out |= set(np.unique(out).tolist())
    assert 12 in seen_src and seen_out == set(range(12))  # the alias occurs; every organ / lobe id is present
    assert [tree_hash(tmp_path / "organ"), tree_hash(tmp_path / "fdg")] == before


# ---------------------------------------------------------------------------------------------------- HECKTOR
def _trilinear(arr: np.ndarray, cont: tuple[float, float, float]) -> float:
    """Trilinear interpolation of a (z, y, x) array at continuous ITK index (i, j, k)."""
    base = [min(int(np.floor(c)), s - 2) for c, s in zip(cont, arr.shape[::-1], strict=True)]
    frac = [c - b for c, b in zip(cont, base, strict=True)]
    value = 0.0
    for corner in np.ndindex(2, 2, 2):
        weight = np.prod([f if o else 1.0 - f for f, o in zip(frac, corner, strict=True)])
        i, j, k = (b + o for b, o in zip(base, corner, strict=True))
        value += weight * float(arr[k, j, i])
    return value


@pytest.mark.parametrize("layout", ["2022", "2025"])
def test_hecktor_resamples_pet_onto_label_grid(tmp_path, layout, synthetic_cases):
    src = tmp_path / "hecktor"
    cases = make_hecktor(src, synthetic_cases, layout)
    before = tree_hash(src)
    folder = convert_hecktor(src, 504, tmp_path / "raw")
    for case in cases:
        label = _read(folder / "labelsTr" / f"{case}.nii.gz")
        pet = _read(folder / "imagesTr" / f"{case}_0000.nii.gz")
        assert geometry_difference(pet, label) is None
        label_arr = sitk.GetArrayFromImage(label)
        assert set(np.unique(label_arr)) == {0, 1, 2}
        src_ct = _read(next(src.rglob(f"{case}__CT.nii.gz")))
        assert geometry_difference(label, src_ct) is None  # labels and output stay on the (finer) CT grid
        src_pet = _read(next(src.rglob(f"{case}__PT.nii.gz")))
        assert all(p > c for p, c in zip(src_pet.GetSpacing(), src_ct.GetSpacing(), strict=True))  # coarser PT
        # output PET = source PT trilinearly interpolated at each label voxel's physical point (computed here by hand)
        lesion_voxel = tuple(int(v) for v in np.argwhere(label_arr == 1)[0][::-1])
        centre = tuple(s // 2 for s in label.GetSize())
        for index in (lesion_voxel, centre, (1, 2, 3)):
            cont = src_pet.TransformPhysicalPointToContinuousIndex(label.TransformIndexToPhysicalPoint(index))
            assert all(0 <= c <= s - 1 for c, s in zip(cont, src_pet.GetSize(), strict=True))
            expected = _trilinear(sitk.GetArrayFromImage(src_pet), cont)
            assert pet.GetPixel(index) == pytest.approx(expected, rel=1e-4, abs=1e-5)
    assert tree_hash(src) == before


# ---------------------------------------------------------------------------------------------------- generic
def test_generic_folder_formats_and_patient_groups(tmp_path, synthetic_cases):
    labels = make_generic(tmp_path, synthetic_cases)
    folder = convert_generic_folder(tmp_path / "data", tmp_path / "labels.json", 505, "Generic", tmp_path / "raw",
                                    case_to_patient=tmp_path / "c2p.json")  # fmt: skip
    ds = json.loads((folder / "dataset.json").read_text())
    assert ds["labels"] == labels and ds["channel_names"] == {"0": "PET", "1": "CT"}
    pet = _read(folder / "imagesTr" / "pat02_scan1_0000.nii.gz")
    src = _read(tmp_path / "data" / "pat02_scan1_pet.nrrd")
    assert is_oblique(pet.GetDirection()) and np.allclose(pet.GetDirection(), src.GetDirection(), atol=1e-6)
    assert np.array_equal(sitk.GetArrayFromImage(pet), sitk.GetArrayFromImage(src))
    for case in GENERIC_CASES:  # channel order PET, CT; labels lesion 1 / liver 2 from the generator
        generated = generic_case(synthetic_cases, case)
        ct = sitk.GetArrayFromImage(_read(folder / "imagesTr" / f"{case}_0001.nii.gz"))
        assert np.array_equal(ct, sitk.GetArrayFromImage(generated.ct))
        seg = sitk.GetArrayFromImage(_read(folder / "labelsTr" / f"{case}.nii.gz"))
        assert np.array_equal(seg == 2, generated.label_array == LABELS["liver"])
        assert np.array_equal(seg == 1, generated.label_array == LABELS["lesion"])
    c2p = json.loads((folder / "case_to_patient.json").read_text())
    assert c2p == GENERIC_CASES
    _check_splits(folder, c2p)


# ------------------------------------------------------------------------------------------------- bad inputs
def _fdg_case(src: Path) -> Path:
    return src / "PETCT_2c3d4e5f6a" / AUTOPET_STUDIES["PETCT_2c3d4e5f6a"][0]


def _bad_missing_seg(src):
    (_fdg_case(src) / "SEG.nii.gz").unlink()
    return "missing SEG.nii.gz"


def _bad_grid(src):
    seg = _read(_fdg_case(src) / "SEG.nii.gz")
    seg.SetOrigin((0.0, 0.0, 0.0))
    write(seg, _fdg_case(src) / "SEG.nii.gz")
    return "grid differs from SUV.nii.gz .*origin"


def _bad_direction(src):
    seg = _read(_fdg_case(src) / "SEG.nii.gz")
    seg.SetDirection(ROTATION_20)
    write(seg, _fdg_case(src) / "SEG.nii.gz")
    return "grid differs .*direction"


def _bad_4d(src):
    write(sitk.Image([4, 4, 4, 2], sitk.sitkFloat32), _fdg_case(src) / "SUV.nii.gz")
    return "expected a 3D single-channel image, got 4D"


def _bad_label_values(src):
    seg = _read(_fdg_case(src) / "SEG.nii.gz")
    write(sitk.Cast(seg * 3, sitk.sitkUInt8), _fdg_case(src) / "SEG.nii.gz")
    return r"label values \[3\] are not in the label map"


def _bad_unreadable(src):
    (_fdg_case(src) / "CTres.nii.gz").write_bytes(b"this is not a nifti file")
    return "unreadable image"


def _bad_duplicate(src):
    twin = src / "PETCT_2c3d4e5f6a" / AUTOPET_STUDIES["PETCT_2c3d4e5f6a"][0].replace("  ", " ")
    twin.mkdir()
    (twin / "SUV.nii.gz").write_bytes((_fdg_case(src) / "SUV.nii.gz").read_bytes())
    return "duplicate case id"


def _bad_empty(src):
    for path in sorted(src.rglob("*"), key=lambda p: -len(p.parts)):
        path.unlink() if path.is_file() else path.rmdir()
    return "no PETCT_.* studies found"


@pytest.mark.parametrize(
    "breaker",
    [_bad_missing_seg, _bad_grid, _bad_direction, _bad_4d, _bad_label_values, _bad_unreadable, _bad_duplicate,
     _bad_empty],
)  # fmt: skip
def test_autopet_fdg_bad_inputs(tmp_path, breaker, synthetic_cases):
    src = tmp_path / "src"
    make_autopet_fdg(src, synthetic_cases)
    message = breaker(src)
    with pytest.raises(ConversionError, match=message) as err:
        convert_autopet_fdg(src, 506, tmp_path / "raw")
    assert "\n" not in str(err.value)


def test_other_converters_bad_inputs(tmp_path, synthetic_cases):
    make_autopet_iv(tmp_path / "iv", synthetic_cases)
    (tmp_path / "iv" / "labelsTr" / f"{AUTOPET_IV_CASES[0]}.nii.gz").unlink()
    with pytest.raises(ConversionError, match="missing label file"):
        convert_autopet_iv(tmp_path / "iv", 507, tmp_path / "raw")
    (tmp_path / "iv" / "imagesTr" / f"{AUTOPET_IV_CASES[1]}_0000.nii.gz").unlink()
    with pytest.raises(ConversionError, match=r"has channels \['0001'\]"):
        convert_autopet_iv(tmp_path / "iv", 507, tmp_path / "raw")
    make_autopet_organ(tmp_path / "organ", tmp_path / "fdg", synthetic_cases)
    (tmp_path / "organ" / "PETCT_ffffffffff_01-01-2000-NA-PET-CT-1_.nii.gz").write_bytes(b"x")
    with pytest.raises(ConversionError, match="no autoPET study folder PETCT_ffffffffff"):
        convert_autopet_organ(tmp_path / "organ", tmp_path / "fdg", 508, tmp_path / "raw")
    make_hecktor(tmp_path / "hk", synthetic_cases)
    (tmp_path / "hk" / "imagesTr" / "CHUM-001__CT.nii.gz").unlink()
    with pytest.raises(ConversionError, match="missing CT file CHUM-001__CT.nii.gz"):
        convert_hecktor(tmp_path / "hk", 509, tmp_path / "raw")
    make_generic(tmp_path / "gen", synthetic_cases)
    (tmp_path / "gen" / "data" / "pat01_scan1_PET.mha").write_bytes(b"x")
    with pytest.raises(ConversionError, match="matches none of the suffixes"):
        convert_generic_folder(tmp_path / "gen" / "data", tmp_path / "gen" / "labels.json", 510, "G", tmp_path / "raw")
    (tmp_path / "gen" / "labels.json").write_text(json.dumps({"background": 0, "lesion": 2}))
    with pytest.raises(ConversionError, match="consecutive from 0"):
        convert_generic_folder(tmp_path / "gen" / "data", tmp_path / "gen" / "labels.json", 510, "G", tmp_path / "raw")


def test_generic_grid_mismatch_error_or_resample(tmp_path, synthetic_cases):
    make_generic(tmp_path, synthetic_cases)
    pet = _read(tmp_path / "data" / "pat01_scan1_pet.nrrd")
    pet.SetSpacing((2.5, 2.0, 3.0))
    write(pet, tmp_path / "data" / "pat01_scan1_pet.nrrd")
    args = (tmp_path / "data", tmp_path / "labels.json", 511, "G")
    with pytest.raises(ConversionError, match="pat01_scan1_pet.nrrd: grid differs .*spacing"):
        convert_generic_folder(*args, tmp_path / "raw")
    folder = convert_generic_folder(*args, tmp_path / "raw", resample=True)
    out = _read(folder / "imagesTr" / "pat01_scan1_0000.nii.gz")
    assert geometry_difference(out, _read(folder / "labelsTr" / "pat01_scan1.nii.gz")) is None


# ---------------------------------------------------------------------------------------------------------- CLI
SCRIPTS = ["seganypet_convert_autopet_fdg", "seganypet_convert_autopet_iv", "seganypet_convert_autopet_organ",
           "seganypet_convert_hecktor", "seganypet_convert_generic"]  # fmt: skip


@pytest.mark.parametrize("script", SCRIPTS)
def test_cli_help_states_channels_and_normalisation(script):
    out = subprocess.run([script, "--help"], capture_output=True, text=True, check=True).stdout
    flat = " ".join(out.split())
    for needle in ("'PET'", "NoNormalization", "z-score", "'CT'", "CTNormalization", "[REQUIRED]"):
        assert needle in flat, f"{script} --help lacks {needle}"


def test_cli_error_is_one_line(tmp_path):
    (tmp_path / "empty").mkdir()
    proc = subprocess.run(["seganypet_convert_autopet_fdg", str(tmp_path / "empty"), "-o", str(tmp_path / "raw")],
                          capture_output=True, text=True, env={**os.environ})  # fmt: skip
    assert proc.returncode == 1 and proc.stderr.strip().count("\n") == 0 and "no PETCT_" in proc.stderr
