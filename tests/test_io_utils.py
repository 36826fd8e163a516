"""Atomic writes keep temporary files where nnU-Net never counts them, and the next writer removes stale ones."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import SimpleITK as sitk

from seganypet_nnunet import io_utils


def test_temp_file_is_outside_the_listed_folder(tmp_path):
    target = tmp_path / "imagesTr" / "c1_0000.nii.gz"
    with io_utils.atomic_path(target) as tmp:
        assert tmp.parent == tmp_path / "imagesTr" / io_utils.TMP_DIR  # a sub-folder: nnU-Net lists files only
        assert tmp.name.endswith(".nii.gz") and str(os.getpid()) in tmp.name
        sitk.WriteImage(sitk.Image(2, 2, 2, sitk.sitkUInt8), str(tmp))
        assert [p.name for p in (tmp_path / "imagesTr").iterdir() if p.is_file()] == []
    assert sitk.ReadImage(str(target)).GetSize() == (2, 2, 2)
    assert not (tmp_path / "imagesTr" / io_utils.TMP_DIR).exists()


def test_stale_temp_files_of_dead_writers_are_removed(tmp_path):
    """A writer killed with -9 leaves its temp file; the next write into that folder removes it (live ones stay)."""
    code = (
        "import os, sys; from seganypet_nnunet import io_utils as u; "
        "cm = u.atomic_path(sys.argv[1]); p = cm.__enter__(); p.write_text('half'); os._exit(0)"
    )
    subprocess.run([sys.executable, "-c", code, str(tmp_path / "c2_0000.nii.gz")], check=True)
    left = list((tmp_path / io_utils.TMP_DIR).iterdir())
    assert len(left) == 1  # what kill -9 leaves behind
    live = tmp_path / io_utils.TMP_DIR / (io_utils.temp_prefix("c3") + "x.nii.gz")
    live.write_text("in progress")  # our own pid: alive
    io_utils.write_json({"a": 1}, tmp_path / "dataset.json")
    assert json.loads((tmp_path / "dataset.json").read_text()) == {"a": 1}
    assert sorted((tmp_path / io_utils.TMP_DIR).iterdir()) == [live]


def test_plain_makes_numpy_values_python():
    import numpy as np

    out = io_utils.plain({"a": np.float64(1.5), "b": [np.int64(2), (np.float32(3),)], "c": np.arange(2)})
    assert out == {"a": 1.5, "b": [2, (3.0,)], "c": [0, 1]}
    assert type(out["a"]) is float and type(out["b"][0]) is int


def test_a_short_file_is_never_published(tmp_path):
    """verify_written catches what SimpleITK's NIfTI writer does not report: a file shorter than its header says."""
    import gzip

    import numpy as np
    import pytest

    img = sitk.GetImageFromArray(np.random.default_rng(0).random((8, 9, 10)).astype(np.float32))
    target = tmp_path / "out" / "pred.nii.gz"
    with pytest.raises(io_utils.IncompleteWriteError, match="pred.nii.gz"):
        with io_utils.atomic_path(target) as tmp:
            sitk.WriteImage(img, str(tmp))
            data = gzip.decompress(tmp.read_bytes())
            tmp.write_bytes(gzip.compress(data[: len(data) // 2]))  # what a full disk leaves
    assert not target.exists() and not (tmp_path / "out" / io_utils.TMP_DIR).exists()
    with pytest.raises(io_utils.IncompleteWriteError):
        with io_utils.atomic_path(tmp_path / "out" / "x.json") as tmp:
            tmp.write_text('{"a": ')
    assert list((tmp_path / "out").iterdir()) == []


def test_full_disk_is_one_line_naming_the_folder_and_bytes(tmp_path):
    from disk_full import MODE, left_in_full_folder, python_command, run_with_full_disk

    full = tmp_path / "full"
    code = (
        "import sys, numpy as np, SimpleITK as sitk\n"
        "from seganypet_nnunet import io_utils\n"
        "img = sitk.GetImageFromArray(np.random.rand(32, 32, 32).astype(np.float32))\n"
        "for write in (lambda: io_utils.write_image(img, sys.argv[1] + '/a.nii.gz'),\n"
        "              lambda: io_utils.write_image(img, sys.argv[1] + '/b.mha'),\n"
        "              lambda: io_utils.write_json({'x': 'y' * 100000}, sys.argv[1] + '/c.json')):\n"
        "    try:\n        write()\n        print('WROTE')\n"
        "    except io_utils.OutOfSpaceError as err:\n        print('ERR', err)\n"
    )
    done = run_with_full_disk([*python_command(code), str(full)], full)
    lines = [x for x in done.stdout.splitlines() if x.strip()]
    assert len(lines) == 3 and all(x.startswith(f"ERR {full}: out of disk space (about ") for x in lines), (MODE, done)
    assert all("bytes needed" in x and "bytes free" in x for x in lines)
    assert left_in_full_folder(full) == [], MODE
