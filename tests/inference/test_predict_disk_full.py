"""seganypet_predict with a full output disk (issue 24 item 1): one line naming the folder and the bytes needed,
exit 1, nothing published, no temporary file left; the same command with room succeeds."""

from __future__ import annotations

import shutil
import sys

import pytest
from disk_full import MODE, left_in_full_folder, run_with_full_disk
from inference_data import shared_model

ARGS = ["-d", "990", "-p", "SegAnyPETPlansTiny", "-f", "0", "-device", "cpu", "-npp", "0", "-nps", "0"]


def _predict(*args) -> list[str]:
    code = "import sys; from seganypet_nnunet.inference.predict import predict_entry; predict_entry(sys.argv[1:])"
    return [sys.executable, "-c", code, *map(str, args)]


@pytest.mark.parametrize("prompted", [False, True], ids=["automatic", "prompted"])
def test_full_disk_is_one_line_and_nothing_is_published(model, tmp_path, monkeypatch, prompted):
    shared_model(None, monkeypatch)
    raw, _ = model
    shutil.copytree(raw / "imagesTs", tmp_path / "in")
    extra = []
    if prompted:
        import json

        from seganypet_nnunet.prompts.prompt_file import SCHEMA

        doc = {"schema": SCHEMA, "cases": {"test00": {"targets": [{"name": "lesion", "points": [
            {"coord": [12, 18, 20], "space": "voxel"}]}]}}}  # fmt: skip
        (tmp_path / "prompts.json").write_text(json.dumps(doc))
        extra = ["--prompts", tmp_path / "prompts.json"]
    full = tmp_path / "full"
    done = run_with_full_disk(_predict("-i", tmp_path / "in", "-o", full / "pred", *ARGS, *extra), full)
    lines = [line for line in done.stderr.splitlines() if line.startswith("seganypet_predict")]
    assert done.returncode == 1, done.stderr[-3000:]
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    assert len(lines) == 1 and str(full / "pred") in lines[0] and "bytes needed" in lines[0], (MODE, done.stderr)
    assert ".seganypet" not in lines[0]  # the user's folder, not a hidden staging copy
    assert [n for n in left_in_full_folder(full) if not n.endswith("-lock")] == [], MODE  # nothing published
    # with room, the same command publishes
    ok = run_with_full_disk.__globals__["subprocess"].run(
        _predict("-i", tmp_path / "in", "-o", tmp_path / "room", *ARGS, *extra), capture_output=True, text=True
    )
    assert ok.returncode == 0, ok.stderr[-3000:]
    assert (tmp_path / "room" / "test00.nii.gz").stat().st_size > 0
