"""Split prediction: -num_parts/-part_id (disjoint, every case once, also with --prompts), --continue_prediction."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import SimpleITK as sitk

from seganypet_nnunet.inference.predict import predict_automatic, predict_prompted
from seganypet_nnunet.inference.split import check_prev_stage, output_is_valid, pending, select_part
from seganypet_nnunet.prompts.prompt_file import SCHEMA

CASES = [f"case{i:02d}" for i in range(5)]
FAST = dict(device="cpu", disable_tta=True, npp=0, nps=0)


@pytest.fixture(scope="module")
def five_cases(model, tmp_path_factory):
    """An input folder of 5 cases (copies of the 2 test images) and the output of ONE automatic run over it."""
    raw, folder = model
    root = tmp_path_factory.mktemp("split")
    images = root / "images"
    images.mkdir()
    for i, case in enumerate(CASES):
        shutil.copy(raw / "imagesTs" / f"test{i % 2:02d}_0000.nii.gz", images / f"{case}_0000.nii.gz")
    whole = root / "whole"
    predict_automatic(folder, images, whole, **FAST)
    return folder, images, whole


def _arrays(folder):
    return {p.name: sitk.GetArrayFromImage(sitk.ReadImage(str(p))) for p in folder.glob("*.nii.gz")}


@pytest.mark.parametrize("num_parts", [1, 2, 3, 4, 7])
def test_parts_are_disjoint_and_cover_every_case_once(num_parts):
    cases = {c: i for i, c in enumerate(reversed(CASES))}
    parts = [select_part(cases, num_parts, k) for k in range(num_parts)]
    seen = [c for p in parts for c in p]
    assert sorted(seen) == sorted(cases)  # each case exactly once
    assert parts[0] == {c: cases[c] for c in sorted(cases)[::num_parts]}  # nnU-Net's order: sorted ids, round-robin


@pytest.mark.parametrize(
    ("num_parts", "part_id", "flag"), [(0, 0, "-num_parts"), (3, 3, "-part_id"), (2, -1, "-part_id")]
)
def test_bad_part_flags(num_parts, part_id, flag):
    with pytest.raises(ValueError, match=flag):
        select_part({"a": 1}, num_parts, part_id)


def test_three_parts_write_exactly_the_files_of_one_run(five_cases, tmp_path):
    folder, images, whole = five_cases
    out = tmp_path / "parts"
    for k in range(3):
        predict_automatic(folder, images, out, num_parts=3, part_id=k, **FAST)
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in whole.iterdir())
    ours, ref = _arrays(out), _arrays(whole)
    assert sorted(ref) == [f"{c}.nii.gz" for c in CASES]
    for name in ref:
        np.testing.assert_array_equal(ours[name], ref[name], err_msg=name)


def test_continue_prediction_redoes_only_missing_or_broken_outputs(five_cases, tmp_path):
    folder, images, whole = five_cases
    out = tmp_path / "out"
    shutil.copytree(whole, out)
    (out / "case01.nii.gz").unlink()
    (out / "case03.nii.gz").write_bytes(b"not an image")
    assert not output_is_valid(out / "case03.nii.gz") and output_is_valid(out / "case00.nii.gz")
    old = {c: os.stat(out / f"{c}.nii.gz").st_mtime_ns for c in ("case00", "case02", "case04")}
    stamp = out / "case00.nii.gz"
    os.utime(stamp, ns=(1, 1))  # an untouched output keeps this mtime
    predict_automatic(folder, images, out, continue_prediction=True, **FAST)
    assert os.stat(stamp).st_mtime_ns == 1
    assert all(os.stat(out / f"{c}.nii.gz").st_mtime_ns == old[c] for c in ("case02", "case04"))
    ours, ref = _arrays(out), _arrays(whole)
    for name in ("case01.nii.gz", "case03.nii.gz"):
        np.testing.assert_array_equal(ours[name], ref[name])
    assert pending({c: 0 for c in CASES}, out, {c: [f"{c}.nii.gz"] for c in CASES}) == {}


def test_prompted_parts_split_the_prompt_file_cases(five_cases, tmp_path):
    folder, images, _ = five_cases
    target = {"name": "lesion", "points": [{"coord": [12, 18, 20], "space": "voxel", "positive": True}]}
    pf = tmp_path / "prompts.json"
    pf.write_text(json.dumps({"schema": SCHEMA, "cases": {c: {"targets": [target]} for c in CASES[:3]}}))
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    predict_prompted(folder, images, whole, pf)
    written = [predict_prompted(folder, images, parts, pf, num_parts=2, part_id=k) for k in range(2)]
    assert [sorted(p.name for p in w) for w in written] == [
        ["case00.json", "case00.nii.gz", "case02.json", "case02.nii.gz"],
        ["case01.json", "case01.nii.gz"],
    ]
    assert sorted(p.name for p in parts.iterdir()) == sorted(p.name for p in whole.iterdir())
    assert predict_prompted(folder, images, parts, pf, continue_prediction=True) == []  # all outputs valid


def test_prev_stage_predictions_checks(tmp_path):
    with pytest.raises(ValueError, match="not a cascade stage"):
        check_prev_stage(tmp_path, ["a"], ".nii.gz", cascade=False)
    with pytest.raises(ValueError, match="pass -prev_stage_predictions"):
        check_prev_stage(None, ["a"], ".nii.gz", cascade=True)
    with pytest.raises(FileNotFoundError, match="missing a.nii.gz"):
        check_prev_stage(tmp_path, ["a"], ".nii.gz", cascade=True)
    check_prev_stage(None, ["a"], ".nii.gz", cascade=False)


def test_cli_part_flags(five_cases, tmp_path):
    _, images, whole = five_cases
    base = [sys.executable, "-c", "from seganypet_nnunet.inference.predict import predict_entry as e; e()"]
    args = ["-i", str(images), "-o", str(tmp_path / "o"), "-d", "990", "-p", "SegAnyPETPlansTiny", "-f", "0"]
    args += ["-device", "cpu", "-npp", "0", "-nps", "0", "--disable_tta"]
    r = subprocess.run([*base, *args, "-num_parts", "2", "-part_id", "2"], capture_output=True, text=True)
    assert r.returncode != 0 and "-part_id: must be in 0..1" in r.stderr
    r = subprocess.run([*base, *args, "-num_parts", "5", "-part_id", "4"], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    assert sorted(p.name for p in (tmp_path / "o").glob("*.nii.gz")) == ["case04.nii.gz"]
    np.testing.assert_array_equal(_arrays(tmp_path / "o")["case04.nii.gz"], _arrays(whole)["case04.nii.gz"])
