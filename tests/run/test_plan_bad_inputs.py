"""seganypet_plan_and_preprocess on bad raw datasets: one line naming the file/flag, exit 1, nothing written — also
without --verify_dataset_integrity (label 42 and 0.5 used to be kept / truncated silently); kill -9 then rerun."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
from bad_files import assert_one_line_error, label_with_value, run_entry, snapshot, truncated, with_nan, zero_bytes
from inference_data import write_raw_dataset

from seganypet_nnunet.run.plan_and_preprocess import plan_and_preprocess_entry

CMD = "seganypet_plan_and_preprocess"
ARGV = ["-d", "990", "-pl", "SegAnyPETPlannerTiny", "-c", "3d_fullres", "-np", "1", "--no_baseline"]


@pytest.fixture
def ds(nnunet_env, monkeypatch):
    monkeypatch.setenv("nnUNet_n_proc_DA", "1")
    return write_raw_dataset(nnunet_env.raw, 990, n_cases=2)


def _img(d):
    return d / "imagesTr" / "case00_0000.nii.gz"


def _lab(d):
    return d / "labelsTr" / "case00.nii.gz"


def _ds_json(d, **kw):
    doc = json.loads((d / "dataset.json").read_text())
    doc.update(kw)
    (d / "dataset.json").write_text(json.dumps(doc))


BAD = {
    "label_42": (lambda d: label_with_value(_lab(d), _lab(d), 42), (), "case00.nii.gz: label values [42] are not"),
    "label_half": (lambda d: label_with_value(_lab(d), _lab(d), 0.5), (), "case00.nii.gz: label image holds non-int"),
    "zero_byte_label": (lambda d: zero_bytes(_lab(d)), (), "case00.nii.gz: label file is empty"),
    "nan_image": (lambda d: with_nan(_img(d), _img(d)), (), "case00_0000.nii.gz: image holds 2 NaN/Inf"),
    "truncated_image": (lambda d: truncated(_img(d), _img(d)), (), "case00_0000.nii.gz: truncated"),
    "only_channel_1": (lambda d: _img(d).rename(d / "imagesTr" / "case00_0001.nii.gz"), (), "missing channel _0000"),
    "extra_channel": (lambda d: shutil.copy(_img(d), d / "imagesTr" / "case00_0001.nii.gz"), (), "channel _0001"),
    "num_training": (lambda d: _ds_json(d, numTraining=9), (), "dataset.json: numTraining is 9 but"),
    "dataset_json_missing": (lambda d: (d / "dataset.json").unlink(), (), "dataset.json: unreadable dataset.json"),
    "dataset_unknown": (None, ("-d", "977"), "dataset id 977 not found"),
    "planner_unknown": (None, ("-pl", "Nope"), "-pl 'Nope': unknown planner"),
    "np_0": (None, ("-np", "0"), "-np [0]: process counts must be >= 1"),
    "spacing_0": (None, ("-overwrite_target_spacing", "0", "1", "1"), "-overwrite_target_spacing [0.0, 1.0, 1.0]"),
    "ambiguous_id": (lambda d: (d.parent / "Dataset990_Twin").mkdir(), (), "dataset id 990 ambiguous"),
    "spacing_1000": (None, ("-overwrite_target_spacing", "1000", "1", "1"), "spacings must lie in 0.1-20 mm"),
    "configuration_4d": (None, ("-c", "4d_fullres"), "-c 4d_fullres: unknown configuration"),
    "npfp_0": (None, ("-npfp", "0"), "-npfp 0: process count must be >= 1"),
    "image_spacing_1000mm": (lambda d: _spacing(_img(d), 1000.0), (), "case00_0000.nii.gz: image spacing (1000"),
    "image_pixdim_0": (lambda d: _pixdim_0(_img(d)), (), "case00_0000.nii.gz: image header pixdim spacing (0"),
}


def _spacing(path, mm: float) -> None:
    import SimpleITK as sitk

    img = sitk.ReadImage(str(path))
    img.SetSpacing((mm, *img.GetSpacing()[1:]))
    sitk.WriteImage(img, str(path))


def _pixdim_0(path) -> None:
    """pixdim[1] (x spacing) of a .nii.gz header set to 0 (SimpleITK then reads 1 mm)."""
    import gzip
    import struct

    raw = gzip.decompress(path.read_bytes())
    path.write_bytes(gzip.compress(raw[:80] + struct.pack("<f", 0.0) + raw[84:]))


@pytest.mark.parametrize("kind", sorted(BAD))
def test_bad_dataset_one_line_nothing_written(ds, nnunet_env, capsys, kind):
    mutate, extra, expect = BAD[kind]
    if mutate is not None:
        mutate(ds)
    argv = ARGV + list(extra)
    if "-d" in extra:
        argv = ARGV[2:] + list(extra)
    before = snapshot(nnunet_env.raw, nnunet_env.preprocessed)
    code, err = run_entry(plan_and_preprocess_entry, argv, capsys)
    assert_one_line_error(code, err, CMD, expect)
    assert snapshot(nnunet_env.raw, nnunet_env.preprocessed) == before


def test_raw_unset(ds, capsys, monkeypatch):
    monkeypatch.delenv("nnUNet_raw")
    code, err = run_entry(plan_and_preprocess_entry, ARGV, capsys)
    assert_one_line_error(code, err, CMD, "environment variable nnUNet_raw is not set")


@pytest.mark.slow
def test_kill_9_during_preprocessing_then_rerun(nnunet_env, monkeypatch):
    """kill -9 (the whole job: the command and nnU-Net's pool workers) once nnU-Net writes preprocessed cases; the
    next run succeeds and holds every case once."""
    monkeypatch.setenv("nnUNet_n_proc_DA", "1")
    write_raw_dataset(nnunet_env.raw, 990, n_cases=4)
    code = "from seganypet_nnunet.run.plan_and_preprocess import plan_and_preprocess_entry as e; e()"
    cmd = [sys.executable, "-c", code, *ARGV]
    data = nnunet_env.preprocessed / "Dataset990_InfTest" / "SegAnyPETPlansTiny_3d_fullres"
    proc = subprocess.Popen(
        cmd, env=dict(os.environ), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None and not (data.is_dir() and any(data.iterdir())):
        time.sleep(0.01)
    assert proc.poll() is None, "planning finished before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    rerun = subprocess.run(cmd, env=dict(os.environ), capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    cases = sorted(p.name.split(".")[0] for p in data.iterdir() if p.name.endswith(".pkl"))
    assert cases == [f"case{i:02d}" for i in range(4)]
