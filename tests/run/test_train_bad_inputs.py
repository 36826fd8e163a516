"""seganypet_train on bad inputs: one line naming the flag/file, exit 1, nothing written, checked before any work.

Runs in-process on the shared tiny planned dataset (Tiny plans, no preprocessed data: every check must fail before
nnU-Net would read data).
"""

from __future__ import annotations

import json

import pytest
from bad_files import assert_one_line_error, garbage, run_entry, snapshot
from inference_data import shared_model

from seganypet_nnunet.run.train import train_entry

CMD = "seganypet_train"
PLANS = "SegAnyPETPlansTiny"


@pytest.fixture
def env(model, monkeypatch, tmp_path):
    shared_model(None, monkeypatch)
    import os
    from pathlib import Path

    return Path(os.environ["nnUNet_preprocessed"]), Path(os.environ["nnUNet_results"]), tmp_path


def _argv(*extra, fold="0", configuration="3d_fullres", dataset="990", plans=PLANS, device="cpu"):
    return [dataset, configuration, fold, "-p", plans, "-device", device, *extra]


def _garbage_weights(tmp):
    return garbage(tmp / "w.pth")


BAD = {
    "fold_7": (lambda t: _argv(fold="7"), "fold 7: nnU-Net makes 5 folds (0..4)"),
    "fold_abc": (lambda t: _argv(fold="abc"), "fold 'abc': must be an integer"),
    "trainer_unknown": (lambda t: _argv("-tr", "Nope"), "-tr 'Nope': unknown trainer"),
    "plans_unknown": (lambda t: _argv(plans="NoPlans"), "NoPlans.json: plans file not found"),
    "configuration_unknown": (lambda t: _argv(configuration="4d"), "configuration '4d' not planned"),
    "dataset_unknown": (lambda t: _argv(dataset="977"), "dataset '977'"),
    "continue_and_val": (lambda t: _argv("--c", "--val"), "--c and --val cannot be used together"),
    "val_best_no_checkpoints": (lambda t: _argv("--val_best", "--disable_checkpointing"), "--val_best is not"),
    "pretrained_missing": (
        lambda t: _argv("-pretrained_weights", t / "nope.pth"),
        "nope.pth: -pretrained_weights file",
    ),
    "pretrained_and_continue": (
        lambda t: _argv("--c", "-pretrained_weights", _garbage_weights(t)),
        "-pretrained_weights: cannot be combined with --c",
    ),
    "pretrained_garbage": (
        lambda t: _argv("-pretrained_weights", _garbage_weights(t)),
        "w.pth: not a readable PyTorch checkpoint",
    ),
    "num_gpus_2_on_cpu": (lambda t: _argv("-num_gpus", "2"), "-num_gpus 2: several GPUs need -device cuda"),
}


@pytest.mark.parametrize("kind", sorted(BAD))
def test_bad_flag_one_line_nothing_written(env, capsys, kind):
    pre, results, tmp = env
    argv, expect = BAD[kind]
    argv = argv(tmp)
    before = snapshot(pre, results)
    code, err = run_entry(train_entry, argv, capsys)
    assert_one_line_error(code, err, CMD, expect)
    assert snapshot(pre, results) == before


def test_fold_not_in_existing_splits(env, capsys):
    pre, results, _ = env
    splits = pre / "Dataset990_InfTest" / "splits_final.json"
    splits.write_text(json.dumps([{"train": ["case00"], "val": ["case01"]}, {"train": ["case01"], "val": ["case00"]}]))
    try:
        before = snapshot(pre, results)
        code, err = run_entry(train_entry, _argv(fold="3"), capsys)
        assert_one_line_error(code, err, CMD, f"{splits}: fold 3 is not in the splits (folds 0..1")
        assert snapshot(pre, results) == before
    finally:
        splits.unlink()


def test_device_cuda_without_cuda(env, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    code, err = run_entry(train_entry, _argv(device="cuda"), capsys)
    assert_one_line_error(code, err, CMD, "-device cuda: CUDA is not available")


def test_preprocessed_unset(env, capsys, monkeypatch):
    monkeypatch.delenv("nnUNet_preprocessed")
    code, err = run_entry(train_entry, _argv(), capsys)
    assert_one_line_error(code, err, CMD, "environment variable nnUNet_preprocessed is not set")


@pytest.mark.slow
def test_kill_9_during_training_then_continue(nnunet_env, monkeypatch):
    """kill -9 (the whole job) right after the first checkpoint_latest.pth; ``--c`` then finishes the run from it."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from inference_data import write_raw_dataset

    from seganypet_nnunet.checkpoint_io import load_checkpoint
    from seganypet_nnunet.run.plan_and_preprocess import plan_and_preprocess

    write_raw_dataset(nnunet_env.raw, 990, n_cases=2)
    plan_and_preprocess([990], planner="SegAnyPETPlannerTiny", num_processes=1, baseline=False, fingerprint_processes=1)
    monkeypatch.setenv("nnUNet_n_proc_DA", "0")
    argv = ["990", "3d_fullres", "all", "-tr", "SegAnyPETTrainer_tiny", "-p", PLANS, "-device", "cpu"]
    code = "from seganypet_nnunet.run.train import train_entry as e; e()"
    fold = nnunet_env.results / "Dataset990_InfTest" / f"SegAnyPETTrainer_tiny__{PLANS}__3d_fullres" / "fold_all"
    proc = subprocess.Popen([sys.executable, "-c", code, *argv], env=dict(os.environ), start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None and not (fold / "checkpoint_latest.pth").exists():
        time.sleep(0.01)
    assert proc.poll() is None, "training finished before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert load_checkpoint(fold / "checkpoint_latest.pth")["current_epoch"] == 1  # complete (atomic), weights_only
    rerun = subprocess.run([sys.executable, "-c", code, *argv, "--c"], env=dict(os.environ), capture_output=True,
                           text=True, timeout=600)  # fmt: skip
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    final = load_checkpoint(fold / "checkpoint_final.pth")
    assert final["current_epoch"] == 2 and final["logging"]["train_losses"]
    assert [p.name for p in fold.iterdir() if p.name.startswith(".")] == []
