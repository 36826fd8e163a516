"""Grand-challenge layout: input discovery, channel mapping (CT resampled onto the PET grid), and (slow) the round trip
case of ours → /input layout → ``seganypet_predict_autopet_gc`` with an untrained tiny model → /output layout →
``seganypet_score_autopet`` on the saved steps.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from seganypet_nnunet.evaluation.autopet_gc import (
    OUTPUT_SUBFOLDER,
    channel_images,
    find_gc_case,
    write_grand_challenge_input,
)


def _image(size, spacing, value: float = 1.0, origin=(0.0, 0.0, 0.0)) -> sitk.Image:
    img = sitk.GetImageFromArray(np.full(size[::-1], value, np.float32))
    img.SetSpacing(spacing)
    img.SetOrigin(origin)
    return img


def test_find_gc_case_and_missing_inputs(tmp_path: Path):
    pet = tmp_path / "pet.nii.gz"
    sitk.WriteImage(_image((4, 5, 6), (2.0, 2.0, 3.0)), str(pet))
    with pytest.raises(FileNotFoundError, match="input folder not found"):
        find_gc_case(tmp_path / "input")
    (tmp_path / "input" / "images" / "pet").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="no .mha PET file"):
        find_gc_case(tmp_path / "input")
    write_grand_challenge_input(pet, None, {"tumor": [[1, 2, 3]], "background": [[0, 0, 0]]}, tmp_path / "input", "u1")
    uuid, pet_file, ct_file, clicks = find_gc_case(tmp_path / "input")
    assert (uuid, pet_file.name, ct_file) == ("u1", "u1.mha", None)
    doc = json.loads(clicks.read_text())
    assert doc["type"] == "Multiple points"
    assert doc["points"] == [{"point": [1, 2, 3], "name": "tumor"}, {"point": [0, 0, 0], "name": "background"}]
    clicks.unlink()
    with pytest.raises(FileNotFoundError, match="lesion-clicks.json"):
        find_gc_case(tmp_path / "input")


def test_channel_images_maps_names_and_resamples_ct():
    pet = _image((4, 5, 6), (2.0, 2.0, 3.0), 7.0)
    ct_same = _image((4, 5, 6), (2.0, 2.0, 3.0), 40.0)
    ct_other = _image((3, 10, 9), (1.0, 1.0, 2.0), 40.0)  # x extent 0-2 mm, PET 0-6 mm
    out = channel_images({"0": "PET", "1": "CT"}, pet, ct_same)
    assert out[0] is pet and out[1] is ct_same
    out = channel_images({"0": "CT", "1": "SUV"}, pet, ct_other)
    assert out[0].GetSize() == pet.GetSize() and out[0].GetSpacing() == pet.GetSpacing() and out[1] is pet
    arr = sitk.GetArrayFromImage(out[0])
    assert arr[0, 0, 0] == pytest.approx(40.0) and arr[-1, -1, -1] == pytest.approx(-1024.0)  # outside the CT
    with pytest.raises(ValueError, match="channel 1 is CT"):
        channel_images({"0": "PET", "1": "CT"}, pet, None)
    with pytest.raises(ValueError, match="'MR'"):
        channel_images({"0": "MR"}, pet, ct_same)


@pytest.mark.slow
def test_grand_challenge_round_trip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    inference_data = pytest.importorskip("inference_data")
    from seganypet_nnunet.evaluation.autopet_gc import predict_grand_challenge
    from seganypet_nnunet.evaluation.autopet_score import score_folder

    raw, model = inference_data.setup_model(tmp_path, monkeypatch)
    pet_file, label_file = raw / "imagesTr" / "case00_0000.nii.gz", raw / "labelsTr" / "case00.nii.gz"
    lab = sitk.GetArrayFromImage(sitk.ReadImage(str(label_file)))
    tumour = np.argwhere(lab == 1)[len(np.argwhere(lab == 1)) // 2][::-1].tolist()  # (z, y, x) -> (i, j, k)
    clicks = {"tumor": [tumour], "background": [[2, 2, 3]]}
    # the tiny model has one PET channel: the CT is present (as in the challenge) and ignored
    write_grand_challenge_input(pet_file, pet_file, clicks, tmp_path / "input", "3f2a-uuid")
    out = predict_grand_challenge(tmp_path / "input", tmp_path / "output", model, save_steps=True)
    assert out == tmp_path / "output" / OUTPUT_SUBFOLDER / "3f2a-uuid.mha"
    seg, pet = sitk.ReadImage(str(out)), sitk.ReadImage(str(pet_file))
    assert seg.GetSize() == pet.GetSize() and np.allclose(seg.GetOrigin(), pet.GetOrigin())
    assert np.allclose(seg.GetDirection(), pet.GetDirection()) and np.allclose(seg.GetSpacing(), pet.GetSpacing())
    assert set(np.unique(sitk.GetArrayFromImage(seg))) <= {0, 1}
    steps = tmp_path / "output" / "steps"
    assert sorted(p.name for p in steps.iterdir()) == sorted(f"3f2a-uuid_pred{k}.mha" for k in range(11))
    last = sitk.ReadImage(str(steps / "3f2a-uuid_pred10.mha"))
    np.testing.assert_array_equal(sitk.GetArrayFromImage(last), sitk.GetArrayFromImage(seg))
    ref_dir = tmp_path / "ref"
    ref_dir.mkdir()
    sitk.WriteImage(sitk.ReadImage(str(label_file)), str(ref_dir / "3f2a-uuid.mha"))
    score = score_folder(steps, ref_dir)
    assert len(score["cases"]["3f2a-uuid"]["steps"]) == 11
    # the console script is installed and reads the same layout
    res = subprocess.run(
        [sys.executable, "-m", "seganypet_nnunet.evaluation.autopet_score", "-pred", str(steps), "-ref", str(ref_dir)],
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0 and "dice_auc" in res.stdout, res.stderr


def _gc_command(input_dir: Path, output_dir: Path, model: Path, *extra) -> list[str]:
    script = Path(sys.executable).parent / "seganypet_predict_autopet_gc"
    return [str(script), "-i", str(input_dir), "-o", str(output_dir), "-m", str(model), "-f", "0", *map(str, extra)]


@pytest.mark.slow
def test_sigterm_leaves_nothing_behind_and_errors_name_the_users_files(tmp_path: Path, monkeypatch):
    """Issue 24 item 4: SIGTERM cleans the working copies (nothing in TMPDIR or the output folder); a bad PET is
    named by the user's path, never a working copy's; a full disk under --save_steps is one line."""
    import os
    import signal
    import time

    inference_data = pytest.importorskip("inference_data")
    raw, model = inference_data.setup_model(tmp_path, monkeypatch)
    pet_file = raw / "imagesTr" / "case00_0000.nii.gz"
    write_grand_challenge_input(
        pet_file, None, {"tumor": [[10, 15, 15]], "background": [[1, 1, 1]]}, tmp_path / "in", "u"
    )
    env = {**os.environ, "TMPDIR": str(tmp_path / "tmpdir")}
    (tmp_path / "tmpdir").mkdir()
    out = tmp_path / "out"
    proc = subprocess.Popen(_gc_command(tmp_path / "in", out, model), env=env, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300  # an upper bound only: the test waits for the working copy to exist
    while time.monotonic() < deadline and proc.poll() is None and not list(out.glob(".gc_work*")):
        time.sleep(0.05)
    assert proc.poll() is None, "finished before the working copy could be seen"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode != 0 and "Traceback" not in err, err[-2000:]
    assert not [p for p in out.rglob("*") if p.name.startswith(".")], list(out.rglob("*"))
    assert not list((tmp_path / "tmpdir").iterdir())

    pet = tmp_path / "in" / "images" / "pet" / "u.mha"
    pet.write_bytes(pet.read_bytes()[: pet.stat().st_size // 2])
    bad = subprocess.run(
        _gc_command(tmp_path / "in", tmp_path / "out2", model), env=env, capture_output=True, text=True
    )
    assert bad.returncode == 1 and "Traceback" not in bad.stderr
    assert f"error: {pet}:" in bad.stderr and "gc_work" not in bad.stderr, bad.stderr
    assert not (tmp_path / "out2").exists()


@pytest.mark.slow
def test_save_steps_on_a_full_disk_is_one_line(tmp_path: Path, monkeypatch):
    from disk_full import MODE, left_in_full_folder, run_with_full_disk

    inference_data = pytest.importorskip("inference_data")
    raw, model = inference_data.setup_model(tmp_path, monkeypatch)
    pet_file = raw / "imagesTr" / "case00_0000.nii.gz"
    write_grand_challenge_input(
        pet_file, None, {"tumor": [[10, 15, 15]], "background": [[1, 1, 1]]}, tmp_path / "in", "u"
    )
    full = tmp_path / "full"
    done = run_with_full_disk(_gc_command(tmp_path / "in", full, model, "--save_steps"), full)
    lines = [x for x in done.stderr.splitlines() if x.startswith("seganypet_predict_autopet_gc")]
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr[-3000:]
    assert len(lines) == 1 and "out of disk space" in lines[0] and str(full) in lines[0], (MODE, lines)
    assert ".gc_work" not in lines[0]
    assert left_in_full_folder(full) == [], MODE
