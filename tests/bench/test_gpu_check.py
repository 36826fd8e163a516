"""bench/gpu_check.py in its tiny CPU mode, end to end, so the GPU check cannot rot between device loans.

Real commands throughout (seganypet_make_synthetic, seganypet_plan_and_preprocess, torchrun + seganypet_train with
gloo, nnUNetv2_predict, seganypet_predict), real trainers on nnU-Net's loaders; nothing about timing is asserted.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "gpu_check.py"


def test_tiny_cpu_mode_runs_every_step_and_reports(tmp_path):
    report_file = tmp_path / "report.json"
    cmd = [sys.executable, str(SCRIPT), "-device", "cpu", "-work", str(tmp_path / "work"), "-o", str(report_file)]
    cmd += ["-budget", "1200"]  # a shared 2-core CPU is slow; the per-step timeouts still apply
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads(report_file.read_text())
    steps = report["steps"]
    assert report["ok"] and list(steps) == ["env", "data", "plan", "throughput", "sam_med3d", "cpcl", "torchrun",
                                            "predict", "session"]  # fmt: skip
    assert all(s["status"] == "ok" for s in steps.values())
    assert report["settings"]["tiny"] and steps["plan"]["result"]["plans"] == "SegAnyPETPlansTiny"

    tp = steps["throughput"]["result"]
    assert tp["SegAnyPETTrainer"]["it_per_s"] > 0 and tp["nnUNetTrainer"]["it_per_s"] > 0 and tp["ratio_it_per_s"] > 0
    for name in ("SegAnyPETTrainer", "nnUNetTrainer"):
        assert all(math.isfinite(v) for v in tp[name]["loss_first_last"])
    for name in ("sam_med3d", "cpcl"):
        r = steps[name]["result"]
        assert r["losses"] and all(math.isfinite(v) for v in r["losses"])
        assert r["updated"]["changed"] > 0
    assert steps["cpcl"]["result"]["cpcl_iterations"] == steps["cpcl"]["result"]["iterations"]
    assert steps["torchrun"]["result"]["backend"] == "gloo" and "cpu" in steps["torchrun"]["result"]["rank_device"]
    pred = steps["predict"]["result"]
    assert pred["voxel_agreement"] >= 0.99 and pred["nnUNetv2_predict"]["peak_rss_mib"] > 0
    session = steps["session"]["result"]
    assert session["first_click_s"] > 0 and session["correction_click_s"] > 0

    out = proc.stdout
    assert "| step | status | wall s | what | figures |" in out and "ALL OK" in out
    assert "ratio SegAnyPET / nnU-Net" in out and "session clicks" in out


def test_a_failing_step_fails_the_check_loudly_and_skips_what_needs_it(tmp_path):
    """No dataset planned: the throughput step fails (one line naming it), the run exits 1, the JSON says so."""
    report_file = tmp_path / "report.json"
    cmd = [sys.executable, str(SCRIPT), "-device", "cpu", "-work", str(tmp_path / "work"), "-o", str(report_file)]
    proc = subprocess.run([*cmd, "-steps", "env", "throughput"], capture_output=True, text=True)
    assert proc.returncode == 1
    assert "GPU CHECK FAILED: throughput (FAILED)" in proc.stderr
    report = json.loads(report_file.read_text())
    assert report["steps"]["env"]["status"] == "ok" and report["steps"]["throughput"]["status"] == "FAILED"
    assert not report["ok"]
