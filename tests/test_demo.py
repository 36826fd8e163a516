"""The main job (``seganypet_demo``) end to end at test size, and its table and picture helpers."""

from __future__ import annotations

import json

import numpy as np
import pytest
import SimpleITK as sitk

from seganypet_nnunet.demo import DemoSettings, run_demo
from seganypet_nnunet.evaluation.plot import plot_mip_overlay


def test_mip_overlay_png(tmp_path):
    pet = np.zeros((20, 12, 16), np.float32)
    pet[5:10, 4:8, 3:9] = 5.0
    seg = (pet > 0).astype(np.uint8)
    out = plot_mip_overlay(pet, {"reference": seg}, (3.0, 2.0, 2.0), tmp_path / "mip.png", {1: "liver"}, "case")
    image = sitk.ReadImage(str(out))
    assert image.GetSize()[0] > 300 and image.GetSize()[1] > 300
    assert not list(tmp_path.glob(".*"))  # nothing half-written left behind


@pytest.mark.slow
def test_demo_pipeline_at_test_size(nnunet_env, tmp_path, monkeypatch):
    """generate → plan (ours + baseline) → train both → predict → clicks → table, with the tiny presets."""
    settings = DemoSettings(
        tmp_path / "demo",
        dataset_id=993,
        num_train=4,
        num_test=1,
        planner="SegAnyPETPlannerTiny",
        trainer="SegAnyPETTrainer_heldout_spleen_tiny",
        baseline_trainer="nnUNetTrainer_seganypet_tiny",
        n_clicks=5,
    )
    result = run_demo(settings)
    structures = {row["structure"] for row in result["table"]}
    assert {"liver", "brain"} <= structures and result["unseen"] == ("spleen",)
    assert all(row["dice_click_5"] is not None for row in result["table"])
    summary = json.loads(result["summary"].read_text())
    assert summary["automatic"] is not None and summary["baseline"] is not None
    assert result["plot"].stat().st_size > 0 and result["overlay"].stat().st_size > 0


@pytest.mark.parametrize(
    "argv,expect",
    [
        (["-device", "cuda"], "-device cuda: CUDA is not available"),
        (["-num_train", "1"], "-num_train 1: a split needs at least 2 training cases"),
        (["-num_test", "0"], "-num_test 0: need at least 1 test case"),
        (["-d", "1000"], "-d 1000: dataset id must be between 1 and 999"),
        (["--pretrained", "no_such_model"], "no_such_model: model folder not found, and not a packaged model"),
    ],
)
def test_bad_settings_fail_before_anything_is_created(tmp_path, capsys, argv, expect):
    """Issue 24 item 7: the demo on -device cuda without CUDA used to fail after 18 s, leaving 14 MB."""
    import torch

    from seganypet_nnunet.demo import demo_entry

    if "cuda" in argv and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(SystemExit) as exit_info:
        demo_entry(["-o", str(tmp_path / "demo"), *argv])
    err = capsys.readouterr().err
    assert exit_info.value.code == 1 and "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("seganypet_demo: error: ") and expect in last, err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_pretrained_demo_clicks_on_the_packaged_model_without_training(tmp_path):
    """Issue 22: ``seganypet_demo --pretrained`` generates test cases, predicts, clicks and evaluates (no training)."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    out = tmp_path / "demo"
    cmd = [str(Path(sys.executable).parent / "seganypet_demo"), "--pretrained", "-o", str(out)]
    res = subprocess.run(cmd, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "packaged model seganypet_reference" in res.stdout and "lesion" in res.stdout
    summary = json.loads((out / "evaluation" / "summary.json").read_text())
    assert len(summary["cases"]) == 1 and (out / "overlay_mip.png").stat().st_size > 0
    assert not (out / "nnUNet_results").exists() or not any((out / "nnUNet_results").iterdir())  # nothing trained
