"""seganypet_predict on bad inputs: one line naming the file/field, exit 1, nothing written; staging and publishing.

The console entry runs in-process (``predict_entry(argv)``): every check fails before any prediction, so each input
costs well under a second. One shared tiny untrained model folder (Tiny planner), read-only.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
from pathlib import Path

import pytest
from bad_files import (
    all_zero,
    assert_one_line_error,
    garbage,
    image_2d,
    image_4d,
    run_entry,
    snapshot,
    truncated,
    with_nan,
    zero_bytes,
)
from inference_data import shared_model

from seganypet_nnunet.inference.predict import predict_entry
from seganypet_nnunet.prompts.prompt_file import SCHEMA

CMD = "seganypet_predict"


@pytest.fixture
def case_dir(model, tmp_path, monkeypatch):
    """tmp_path/in with the two good test images (env vars of the shared model set for this test)."""
    shared_model(None, monkeypatch)
    raw, _ = model
    shutil.copytree(raw / "imagesTs", tmp_path / "in")
    return tmp_path


def _args(c: Path, *extra, i="in", o="out") -> list:
    return ["-i", c / i, "-o", c / o, "-d", "990", "-p", "SegAnyPETPlansTiny", "-f", "0", "-device", "cpu",
            "-npp", "0", "-nps", "0", *extra]  # fmt: skip


def _img(c: Path) -> Path:
    return c / "in" / "test00_0000.nii.gz"


PT = {"coord": [12, 18, 20], "space": "voxel"}


def _target(case="test00", **t):
    return {"schema": SCHEMA, "cases": {case: {"targets": [{"name": "lesion", **t}]}}}


# input -> (setup(case_dir) -> extra argv, text the error line must contain)
BAD_IMAGES = {
    "truncated": (lambda c: truncated(_img(c), _img(c)), "test00_0000.nii.gz: truncated"),
    "zero_bytes": (lambda c: zero_bytes(_img(c)), "test00_0000.nii.gz: image file is empty"),
    "nan": (lambda c: with_nan(_img(c), _img(c)), "test00_0000.nii.gz: image holds 2 NaN/Inf"),
    "all_zero": (lambda c: all_zero(_img(c), _img(c)), "test00_0000.nii.gz: image is all zero"),
    "2d": (lambda c: image_2d(_img(c)), "test00_0000.nii.gz: expected a 3D single-channel image, got 2D"),
    "4d": (lambda c: image_4d(_img(c), _img(c)), "test00_0000.nii.gz: expected a 3D single-channel image, got 4D"),
    "garbage": (lambda c: garbage(_img(c)), "test00_0000.nii.gz: unreadable image"),
    "only_channel_1": (lambda c: _img(c).rename(c / "in" / "test00_0001.nii.gz"), "missing channel _0000"),
    "extra_channel": (lambda c: shutil.copy(_img(c), c / "in" / "test00_0001.nii.gz"), "unexpected channel _0001"),
    "folder_like_image": (lambda c: (c / "in" / "x_0000.nii.gz").mkdir(), "x_0000.nii.gz: is a folder"),
    "no_channel_suffix": (lambda c: shutil.copy(_img(c), c / "in" / "x.nii.gz"), "x.nii.gz: name must be CASE_XXXX"),
    "spacing_1000mm": (lambda c: _spacing(_img(c), 1000.0), "test00_0000.nii.gz: image spacing (1000"),
    "pixdim_0": (lambda c: _pixdim_0(_img(c)), "test00_0000.nii.gz: image header pixdim spacing (0"),
}


def _spacing(path: Path, mm: float) -> None:
    import SimpleITK as sitk

    img = sitk.ReadImage(str(path))
    img.SetSpacing((mm, *img.GetSpacing()[1:]))
    sitk.WriteImage(img, str(path))


def _pixdim_0(path: Path) -> None:
    """pixdim[1] (x spacing) of a .nii.gz header set to 0: SimpleITK would read 1 mm and predict on it."""
    import struct

    raw = gzip.decompress(path.read_bytes())
    path.write_bytes(gzip.compress(raw[:80] + struct.pack("<f", 0.0) + raw[84:]))


@pytest.mark.parametrize("kind", sorted(BAD_IMAGES))
def test_bad_image_one_line_nothing_written(case_dir, capsys, kind):
    setup, expect = BAD_IMAGES[kind]
    setup(case_dir)
    before = snapshot(case_dir)
    code, err = run_entry(predict_entry, _args(case_dir), capsys)
    assert_one_line_error(code, err, CMD, expect)
    assert "Background workers" not in err
    assert snapshot(case_dir) == before  # no output folder, no staging folder, inputs untouched


BAD_PROMPTS = {
    "missing_file": (None, "nope.json: --prompts file not found"),
    "bad_json": ("{", "p.json: unreadable prompt JSON"),
    "deeply_nested": ("[" * 100000 + "]" * 100000, "p.json: prompt JSON is nested too deeply"),
    "points_not_list": (_target(points={"coord": [1, 2, 3]}), "targets[0].points: must be a list"),
    "point_not_object": (_target(points=[[1, 2, 3]]), "targets[0].points[0]: must be an object"),
    "target_name_path": (
        {"schema": SCHEMA, "cases": {"test00": {"targets": [{"name": "../x", "points": [PT]}]}}},
        "targets[0].name '../x': may not start with '.'",
    ),
    "duplicate_case": (
        '{"schema": "%s", "cases": {"test00": {"targets": [{"name": "a", "points": [{"coord": [12, 18, 20]}]}]}, '
        '"test00": {"targets": [{"name": "b", "points": [{"coord": [12, 18, 20]}]}]}}}' % SCHEMA,
        "key 'test00' appears twice",
    ),
    "zero_volume_box": (
        _target(boxes=[{"min": [-30, 20, 20], "max": [-30, 40, 40], "space": "world"}]),
        "boxes[0]: zero-volume box",
    ),
    "negative_only": (_target(points=[{**PT, "positive": False}]), "has only negative points"),
    "too_many_points": (_target(points=[PT] * 2000), "2000 points, the model accepts at most 16"),
    "unknown_case": (_target("nope", points=[PT]), "case 'nope' does not exist"),
    "outside": (_target(points=[{"coord": [900, 1, 1]}]), "lies outside the image"),
    "box_min_gt_max": (_target(boxes=[{"min": [9, 9, 9], "max": [1, 1, 1]}]), "boxes[0]: min"),
    "wrong_schema": ({"schema": "x", "cases": {}}, "field 'schema' must be"),
}


@pytest.mark.parametrize("kind", sorted(BAD_PROMPTS))
def test_bad_prompt_file_one_line_nothing_written(case_dir, capsys, kind):
    doc, expect = BAD_PROMPTS[kind]
    pf = case_dir / ("nope.json" if doc is None else "p.json")
    if doc is not None:
        pf.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    before = snapshot(case_dir)
    code, err = run_entry(predict_entry, _args(case_dir, "--prompts", pf), capsys)
    assert_one_line_error(code, err, CMD, expect)
    assert snapshot(case_dir) == before


def _empty(c: Path) -> list:
    (c / "e").mkdir()
    return []


def _file(c: Path) -> list:
    (c / "f.txt").write_text("x")
    return []


BAD_SETTINGS = {
    "input_missing": (lambda c: ["-i", c / "nope"], "nope: input folder not found"),
    "input_is_file": (lambda c: [*_file(c), "-i", c / "f.txt"], "f.txt: is a file, expected an input folder"),
    "empty_input": (lambda c: [*_empty(c), "-i", c / "e"], "e: no images named CASE_0000"),
    "output_is_input": (lambda c: ["-o", c / "in"], "-o is the same folder as -i"),
    "output_is_file": (lambda c: [*_file(c), "-o", c / "f.txt"], "f.txt: -o is an existing file"),
    "fold_not_trained": (lambda c: ["-f", "3"], "fold_3"),
    "fold_not_int": (lambda c: ["-f", "abc"], "-f: invalid literal"),
    "dataset_unknown": (lambda c: ["-d", "977"], "-d 977"),
    "checkpoint_name": (lambda c: ["-chk", "nope.pth"], "fold 0 has no checkpoint nope.pth"),
    "step_size_0": (lambda c: ["-step_size", "0"], "-step_size 0.0: must be in (0, 1]"),
    "npp_negative": (lambda c: ["-npp", "-1"], "-npp -1: must be a whole number >= 0"),
    "prompts_is_folder": (lambda c: [*_empty(c), "--prompts", c / "e"], "e: --prompts is a folder"),
}


@pytest.mark.parametrize("kind", sorted(BAD_SETTINGS))
def test_bad_setting_one_line_nothing_written(case_dir, capsys, kind):
    extra, expect = BAD_SETTINGS[kind]
    argv = _args(case_dir, *extra(case_dir))
    before = snapshot(case_dir)
    code, err = run_entry(predict_entry, argv, capsys)
    assert_one_line_error(code, err, CMD, expect)
    assert snapshot(case_dir) == before


def test_device_cuda_without_cuda_is_one_line(case_dir, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    before = snapshot(case_dir)
    code, err = run_entry(predict_entry, _args(case_dir)[:-6] + ["-device", "cuda"], capsys)
    assert_one_line_error(code, err, CMD, "-device cuda: CUDA is not available")
    assert snapshot(case_dir) == before


def test_read_only_output_is_one_line(case_dir):
    """-o on a read-only file system (a tmpfs mounted read-only in the command's own mount namespace)."""
    import subprocess
    import sys

    from disk_full import CAN_MOUNT

    if not CAN_MOUNT:
        pytest.skip("cannot mount a read-only file system here (needs unshare -m)")
    ro = case_dir / "ro"
    ro.mkdir()
    code = "import sys; from seganypet_nnunet.inference.predict import predict_entry; predict_entry(sys.argv[1:])"
    argv = " ".join(f"'{a}'" for a in [sys.executable, "-c", code, *map(str, _args(case_dir, o="ro/pred"))])
    done = subprocess.run(["unshare", "-m", "sh", "-c", f"mount -t tmpfs -o ro tmpfs '{ro}' && {argv}"],
                          capture_output=True, text=True)  # fmt: skip
    assert_one_line_error(done.returncode, done.stderr, CMD, f"{ro}: -o is not writable")


def test_verbose_shows_the_traceback(case_dir, capsys):
    code, err = run_entry(predict_entry, _args(case_dir, "--verbose", i="nope"), capsys)
    assert code == 1 and "Traceback" in err and err.strip().splitlines()[-1].startswith(f"{CMD}: error: ")


@pytest.mark.slow
def test_stale_staging_is_removed_and_stale_json_replaced(case_dir, capsys):
    """A staging folder left by a killed run (dead pid) goes on the next run; an automatic run's label map removes
    the CASE.json of an earlier prompted run (outputs of one case always come from one run)."""
    from seganypet_nnunet.io_utils import temp_prefix

    stale = case_dir / (temp_prefix("out").replace(str(os.getpid()), "999999") + "x")
    stale.mkdir()
    (stale / "test00.nii.gz").write_text("half")
    out = case_dir / "out"
    out.mkdir()
    (out / "test00.json").write_text('{"labels": {"1": "old"}}')
    code = 0
    try:
        predict_entry([str(a) for a in _args(case_dir)])
    except SystemExit as e:
        code = e.code
    assert code in (0, None)
    assert not stale.exists()
    assert (out / "test00.nii.gz").is_file() and not (out / "test00.json").exists()
    assert [
        p.name for p in case_dir.iterdir() if p.name.startswith(".") and "seganypet-" in p.name and "lock" not in p.name
    ] == []


def _text(path: Path) -> str:
    """A published file's text (the stand-in label map is gzip-compressed: publishing verifies its stream)."""
    return gzip.decompress(path.read_bytes()).decode() if path.name.endswith(".gz") else path.read_text()


def _publish_many(args) -> None:
    from seganypet_nnunet.inference.predict import _publish

    root, run, n = args
    for i in range(n):
        staging = Path(root) / f"stage_{run}_{i}"
        staging.mkdir()
        (staging / "case.json").write_text(json.dumps({"run": run, "i": i}))
        (staging / "case.nii.gz").write_bytes(gzip.compress(json.dumps({"run": run, "i": i}).encode()))
        _publish(staging, Path(root) / "out", ".nii.gz")


def test_concurrent_publishing_keeps_each_case_from_one_run(tmp_path):
    """Two processes publishing into one OUT: after every publish, CASE.json and CASE.nii.gz come from one run."""
    import multiprocessing as mp
    import threading

    seen, stop = [], threading.Event()

    def watch():
        out = tmp_path / "out"
        while not stop.is_set():
            lock = tmp_path / ".out.seganypet-lock"
            if not lock.exists():
                continue
            import fcntl

            with open(lock) as h:
                fcntl.flock(h, fcntl.LOCK_SH)
                try:
                    pair = [_text(out / n) for n in ("case.json", "case.nii.gz") if (out / n).exists()]
                finally:
                    fcntl.flock(h, fcntl.LOCK_UN)
            if len(pair) == 2:
                seen.append(pair)

    watcher = threading.Thread(target=watch)
    watcher.start()
    with mp.get_context("fork").Pool(2) as pool:
        pool.map(_publish_many, [(str(tmp_path), "A", 25), (str(tmp_path), "B", 25)])
    stop.set()
    watcher.join()
    assert seen and all(a == b for a, b in seen)
    final = [_text(tmp_path / "out" / n) for n in ("case.json", "case.nii.gz")]
    assert final[0] == final[1]


@pytest.mark.slow
def test_two_prompted_runs_into_one_output(model, tmp_path, monkeypatch):
    """Two real seganypet_predict processes into one -o: both succeed, no staging left, and the label map of each case
    only holds ids named by the JSON beside it."""
    import subprocess
    import sys

    import numpy as np
    import SimpleITK as sitk

    shared_model(None, monkeypatch)
    raw, _ = model
    docs = {
        "a": {"schema": SCHEMA, "cases": {"test01": {"targets": [{"name": "a", "points": [PT]}]}}},
        "b": {"schema": SCHEMA, "cases": {"test01": {"targets": [
            {"name": "b1", "points": [PT]}, {"name": "b2", "boxes": [{"min": [4, 6, 8], "max": [16, 24, 30]}]}]}}},
    }  # fmt: skip
    procs = []
    for name, doc in docs.items():
        (tmp_path / f"{name}.json").write_text(json.dumps(doc))
        argv = [str(a) for a in _args(tmp_path, "--prompts", tmp_path / f"{name}.json", i=raw / "imagesTs")]
        code = "from seganypet_nnunet.inference.predict import predict_entry as e; e()"
        procs.append(subprocess.Popen([sys.executable, "-c", code, *argv], stderr=subprocess.PIPE, text=True))
    for p in procs:
        assert p.wait(timeout=600) == 0, p.stderr.read()[-2000:]
    out = tmp_path / "out"
    labels = json.loads((out / "test01.json").read_text())["labels"]
    values = set(np.unique(sitk.GetArrayFromImage(sitk.ReadImage(str(out / "test01.nii.gz")))).tolist())
    assert values <= {0} | {int(k) for k in labels}
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.seganypet-") and "lock" not in p.name]


@pytest.mark.slow
def test_kill_9_during_prediction_then_rerun(model, tmp_path, monkeypatch):
    """kill -9 while predicting: OUT gets nothing (the staging folder is hidden); the next run removes the stale
    staging folder and publishes every case."""
    import signal
    import subprocess
    import sys
    import time

    shared_model(None, monkeypatch)
    raw, _ = model
    argv = [str(a) for a in _args(tmp_path, i=raw / "imagesTs")]
    code = "from seganypet_nnunet.inference.predict import predict_entry as e; e()"
    proc = subprocess.Popen([sys.executable, "-c", code, *argv], env=dict(os.environ), start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.time() + 300
    staged = []
    while time.time() < deadline and proc.poll() is None and not staged:
        staged = list(tmp_path.glob(".out.seganypet-*/*"))
        time.sleep(0.01)
    assert proc.poll() is None, "prediction finished before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (tmp_path / "out").exists()
    rerun = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert {"test00.nii.gz", "test01.nii.gz"} <= {p.name for p in (tmp_path / "out").iterdir()}
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.seganypet-") and "lock" not in p.name]
