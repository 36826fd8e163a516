"""The main job (``seganypet_demo``) end to end at test size, and its table and picture helpers."""

from __future__ import annotations

import json

import numpy as np
import pytest
import SimpleITK as sitk

from seganypet_nnunet.demo import DemoSettings, format_table, run_demo
from seganypet_nnunet.evaluation.plot import plot_mip_overlay


def test_format_table_marks_heldout_and_missing_values():
    rows = [
        {
            "structure": "liver",
            "automatic": 0.8,
            "baseline": 0.75,
            "dice_click_1": 0.5,
            "dice_click_3": 0.6,
            "dice_click_5": None,
        },
        {
            "structure": "spleen",
            "automatic": None,
            "baseline": 0.1,
            "dice_click_1": 0.2,
            "dice_click_3": 0.3,
            "dice_click_5": 0.4,
        },
    ]
    lines = format_table(rows, unseen=("spleen",)).splitlines()
    liver = next(line for line in lines if line.strip().startswith("liver"))
    assert [c.strip() for c in liver.split("|")] == ["liver", "0.750", "0.800", "0.500", "0.600", "-"]
    assert any(line.strip().startswith("spleen *") for line in lines)
    assert lines[-1].startswith("* never a prompt target") and "spleen" in lines[-1]


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
