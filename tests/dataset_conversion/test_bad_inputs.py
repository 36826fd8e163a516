"""Converters on bad inputs: one line naming the file/field, exit 1, nothing written (no empty folders, no files, no
splits replaced); ``kill -9`` mid-conversion leaves nothing nnU-Net would count; unlabelled cases → imagesTs."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import SimpleITK as sitk
from bad_files import (
    all_zero,
    assert_one_line_error,
    garbage,
    image_2d,
    image_4d,
    label_with_value,
    run_entry,
    shifted,
    snapshot,
    truncated,
    with_nan,
    zero_bytes,
)
from inference_data import make_image

from seganypet_nnunet.dataset_conversion.generic_folder import convert_entry, convert_generic_folder

CMD = "seganypet_convert_generic"
LABELS = {"background": 0, "lesion": 1}


def _source(root: Path, n: int = 2) -> Path:
    src = root / "src"
    src.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        pet, lab = make_image(i)
        sitk.WriteImage(pet, str(src / f"c{i}_pet.nii.gz"))
        sitk.WriteImage(lab, str(src / f"c{i}_seg.nii.gz"))
    (root / "labels.json").write_text(json.dumps(LABELS))
    return src


@pytest.fixture
def root(tmp_path, monkeypatch):
    monkeypatch.setenv("nnUNet_preprocessed", str(tmp_path / "pre"))
    _source(tmp_path)
    return tmp_path


def _argv(r: Path, *extra, src="src", labels="labels.json", name="G", did="950") -> list:
    return [r / src, "-l", r / labels, "-d", did, "-n", name, "-o", r / "out", *extra]


def _pet(r):
    return r / "src" / "c0_pet.nii.gz"


def _seg(r):
    return r / "src" / "c0_seg.nii.gz"


def _splits(r):
    folder = r / "out" / "Dataset950_G"
    folder.mkdir(parents=True)
    (folder / "splits_final.json").write_text(json.dumps([{"train": ["x"], "val": ["y"]}]))


# input -> (mutate(root) or None, extra argv, text the error line must contain)
BAD = {
    "source_missing": (None, {"src": "nope"}, "nope: source folder not found"),
    "source_empty": (lambda r: (r / "empty").mkdir(), {"src": "empty"}, "empty: no <case>_pet/_seg"),
    "labels_missing": (None, {"labels": "nope.json"}, "nope.json: unreadable label map JSON"),
    "labels_bad_json": (lambda r: (r / "labels.json").write_text("{"), {}, "labels.json: unreadable label map"),
    "labels_gap": (lambda r: (r / "labels.json").write_text('{"background": 0, "a": 2}'), {}, "consecutive"),
    "name_escapes": (None, {"name": "x/../../escaped"}, "-n 'x/../../escaped': may not contain a path separator"),
    "id_0": (None, {"did": "0"}, "-d 0: dataset id must be in 1..999"),
    "no_seg": (lambda r: _seg(r).unlink(), {}, "c0_pet.nii.gz: case c0 has no _seg file"),
    "unmatched_name": (lambda r: shutil.copy(_pet(r), r / "src" / "c9.nii.gz"), {}, "c9.nii.gz: name matches none"),
    "truncated_pet": (lambda r: truncated(_pet(r), _pet(r)), {}, "c0_pet.nii.gz: truncated"),
    "zero_byte_pet": (lambda r: zero_bytes(_pet(r)), {}, "c0_pet.nii.gz: image file is empty"),
    "nan_pet": (lambda r: with_nan(_pet(r), _pet(r)), {}, "c0_pet.nii.gz: image holds 2 NaN/Inf"),
    "all_zero_pet": (lambda r: all_zero(_pet(r), _pet(r)), {}, "c0_pet.nii.gz: image is all zero"),
    "pet_2d": (lambda r: image_2d(_pet(r)), {}, "c0_pet.nii.gz: expected a 3D single-channel image, got 2D"),
    "pet_4d": (lambda r: image_4d(_pet(r), _pet(r)), {}, "c0_pet.nii.gz: expected a 3D single-channel image, got 4D"),
    "garbage_pet": (lambda r: garbage(_pet(r)), {}, "c0_pet.nii.gz: unreadable image"),
    "label_42": (lambda r: label_with_value(_seg(r), _seg(r), 42), {}, "c0_seg.nii.gz: label values [42]"),
    "label_half": (lambda r: label_with_value(_seg(r), _seg(r), 0.5), {}, "c0_seg.nii.gz: label image holds non-int"),
    "folder_like_image": (lambda r: (r / "src" / "c5_pet.nii.gz").mkdir(), {}, "c5_pet.nii.gz: is a folder"),
    "grid_mismatch": (lambda r: shifted(_pet(r), _pet(r)), {}, "c0_pet.nii.gz: grid differs"),
    "other_splits": (_splits, {}, "Dataset950_G/splits_final.json: a different splits_final.json"),
    "id_used": (lambda r: (r / "out" / "Dataset950_Other").mkdir(parents=True), {}, "Dataset950_Other: dataset id"),
}


@pytest.mark.parametrize("kind", sorted(BAD))
def test_bad_input_one_line_nothing_written(root, capsys, kind):
    mutate, kw, expect = BAD[kind]
    if mutate is not None:
        mutate(root)
    before = snapshot(root)
    code, err = run_entry(convert_entry, _argv(root, **kw), capsys)
    assert_one_line_error(code, err, CMD, expect)
    assert snapshot(root) == before  # no dataset folder, no staging, no preprocessed splits, sources untouched


def test_preprocessed_splits_of_another_run_are_never_replaced(root, capsys):
    pre = root / "pre" / "Dataset950_G" / "splits_final.json"
    pre.parent.mkdir(parents=True)
    pre.write_text(json.dumps([{"train": ["a"], "val": ["b"]}]))
    before = snapshot(root)
    code, err = run_entry(convert_entry, _argv(root), capsys)
    assert_one_line_error(code, err, CMD, f"{pre}: a different splits_final.json already exists")
    assert snapshot(root) == before


def test_unlabelled_cases_become_test_cases(root):
    pet, _ = make_image(7)
    sitk.WriteImage(pet, str(root / "src" / "u7_pet.nii.gz"))
    folder = convert_generic_folder(root / "src", root / "labels.json", 950, "G", root / "out",
                                    unlabelled_to_images_ts=True)  # fmt: skip
    assert sorted(p.name for p in (folder / "imagesTs").iterdir()) == ["u7_0000.nii.gz"]
    assert sorted(p.name for p in (folder / "labelsTr").iterdir()) == ["c0.nii.gz", "c1.nii.gz"]
    assert json.loads((folder / "dataset.json").read_text())["numTraining"] == 2
    assert json.loads((root / "pre" / folder.name / "splits_final.json").read_text())  # written where nnU-Net reads
    assert [p for p in (root / "out").iterdir() if p.name.startswith(".")] == []


@pytest.mark.slow
def test_kill_9_mid_conversion_then_rerun(tmp_path):
    """kill -9 while the converter writes; nothing nnU-Net counts is left; the next run succeeds with every case."""
    src = _source(tmp_path, n=12)
    env = {**os.environ, "nnUNet_preprocessed": str(tmp_path / "pre")}
    code = "from seganypet_nnunet.dataset_conversion.generic_folder import convert_entry as e; e()"
    argv = [str(a) for a in _argv(tmp_path)]
    proc = subprocess.Popen([sys.executable, "-c", code, *argv], env=env, stderr=subprocess.DEVNULL)
    staged = []
    deadline = time.time() + 120
    while time.time() < deadline and not staged and proc.poll() is None:
        staged = [p for p in (tmp_path / "out").glob(".staging.seganypet-*/*/imagesTr/*.nii.gz")]
        time.sleep(0.01)
    assert staged, "the converter finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (tmp_path / "out" / "Dataset950_G").exists()  # nothing published, nothing half-counted
    rerun = subprocess.run([sys.executable, "-c", code, *argv], env=env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    from nnunetv2.utilities.utils import get_filenames_of_train_images_and_targets

    folder = tmp_path / "out" / "Dataset950_G"
    cases = get_filenames_of_train_images_and_targets(str(folder), json.loads((folder / "dataset.json").read_text()))
    assert sorted(cases) == sorted(f"c{i}" for i in range(12))  # nnU-Net counts exactly the 12 cases
    assert [p.name for p in (tmp_path / "out").iterdir() if p.name.startswith(".")] == []  # stale staging removed
    assert len(list(src.iterdir())) == 24
