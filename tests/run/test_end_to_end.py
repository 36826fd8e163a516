"""End to end on a clean tmp env: our plan/preprocess and training CLIs, then STOCK nnUNetv2_predict / _evaluate_folder.

One module-scoped run is shared by the default-suite assertions: an "interrupted" SegAnyPETTrainer_tiny run (epoch 0
done, checkpoint_latest.pth left), resumed with ``seganypet_train ... --c`` (epoch 1 + final validation), then stock
prediction of imagesTs and stock evaluation against labelsTs.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import sys

import pytest
import torch

from seganypet_nnunet.checkpoint_io import load_checkpoint
from seganypet_nnunet.run.train import build_trainer
from seganypet_nnunet.synthetic.dataset import make_dataset
from seganypet_nnunet.trainers.variants import SegAnyPETTrainer_tiny

DATASET_ID = 901
PLANS = "SegAnyPETPlansTiny"
TRAINER = "SegAnyPETTrainer_tiny"
CPU = torch.device("cpu")


def _sh(args: list[str], env: dict[str, str], **kw) -> subprocess.CompletedProcess:
    """Runs a command; on failure the assertion shows its output tail."""
    proc = subprocess.run(args, env=env, capture_output=True, text=True, **kw)
    assert proc.returncode == 0, f"{' '.join(args)} failed:\n{(proc.stdout + proc.stderr)[-4000:]}"
    return proc


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    """Runs the pipeline once; yields a dict of paths and the interrupted run's checkpoint."""
    root = tmp_path_factory.mktemp("e2e")
    with pytest.MonkeyPatch.context() as mp:
        for key in ("raw", "preprocessed", "results"):
            mp.setenv(f"nnUNet_{key}", str(root / key))
        mp.setenv("nnUNet_def_n_proc", "1")
        mp.delenv("nnUNet_n_proc_DA", raising=False)  # nnU-Net's planner crashes with nnUNet_n_proc_DA=0
        raw = make_dataset(DATASET_ID, num_train=6, num_test=2)
        _sh(
            ["seganypet_plan_and_preprocess", "-d", str(DATASET_ID), "-pl", "SegAnyPETPlannerTiny", "-c", "3d_fullres"],
            dict(os.environ),
        )
        mp.setenv("nnUNet_n_proc_DA", "0")
        env = dict(os.environ)

        interrupted = build_trainer(SegAnyPETTrainer_tiny, str(DATASET_ID), "3d_fullres", 0, PLANS, device=CPU)
        interrupted.num_epochs = 1  # stands in for a run killed after epoch 0 (save_every=1 wrote "latest")
        interrupted.run_training()
        fold = interrupted.output_folder
        os.replace(os.path.join(fold, "checkpoint_final.pth"), os.path.join(fold, "checkpoint_latest.pth"))
        epoch1 = load_checkpoint(os.path.join(fold, "checkpoint_latest.pth"))
        logs_before = set(glob.glob(os.path.join(fold, "training_log_*.txt")))

        _sh(
            [
                "seganypet_train",
                str(DATASET_ID),
                "3d_fullres",
                "0",
                "-tr",
                TRAINER,
                "-p",
                PLANS,
                "-device",
                "cpu",
                "--c",
            ],
            env,
        )
        out = root / "pred"
        _sh(
            [
                "nnUNetv2_predict",
                "-i",
                str(raw / "imagesTs"),
                "-o",
                str(out),
                "-d",
                str(DATASET_ID),
                "-c",
                "3d_fullres",
                "-p",
                PLANS,
                "-tr",
                TRAINER,
                "-f",
                "0",
                "-device",
                "cpu",
                "-npp",
                "0",
                "-nps",
                "0",
            ],
            env,
        )
        _sh(
            [
                "nnUNetv2_evaluate_folder",
                str(raw / "labelsTs"),
                str(out),
                "-djfile",
                str(out / "dataset.json"),
                "-pfile",
                str(out / "plans.json"),
                "-np",
                "1",
            ],
            env,
        )
        yield {
            "root": root,
            "raw": raw,
            "fold": fold,
            "pred": out,
            "epoch1": epoch1,
            "env": env,
            "new_logs": sorted(set(glob.glob(os.path.join(fold, "training_log_*.txt"))) - logs_before),
        }


def test_results_layout_and_checkpoint_naming(pipeline):
    model = os.path.dirname(pipeline["fold"])
    assert os.path.basename(model) == f"{TRAINER}__{PLANS}__3d_fullres"
    for name in ("plans.json", "dataset.json", "dataset_fingerprint.json"):
        assert os.path.isfile(os.path.join(model, name))
    assert os.path.isfile(os.path.join(pipeline["fold"], "validation", "summary.json"))
    final = load_checkpoint(os.path.join(pipeline["fold"], "checkpoint_final.pth"))
    assert final["trainer_name"] == "nnUNetTrainer"
    assert final["seganypet"]["trainer_class"] == TRAINER


def test_continue_resumes_from_checkpoint(pipeline):
    final = load_checkpoint(os.path.join(pipeline["fold"], "checkpoint_final.pth"))
    assert pipeline["epoch1"]["current_epoch"] == 1 and final["current_epoch"] == 2
    # the logger state of epoch 0 came from the checkpoint, so nnU-Net's load_checkpoint ran (weights included)
    assert final["logging"]["train_losses"][0] == pipeline["epoch1"]["logging"]["train_losses"][0]
    log = "".join(open(p).read() for p in pipeline["new_logs"])
    assert "Epoch 1" in log and "Epoch 0" not in log
    # weights continued from epoch 1: 3 SGD steps move them far less than a fresh initialisation differs
    fresh = build_trainer(SegAnyPETTrainer_tiny, str(DATASET_ID), "3d_fullres", 0, PLANS, device=CPU)
    fresh.initialize()
    w1, wf = pipeline["epoch1"]["network_weights"], final["network_weights"]
    w0 = fresh.network.state_dict()
    step = sum(float((wf[k].float() - w1[k].float()).norm()) for k in w1)
    reinit = sum(float((w0[k].float() - w1[k].float()).norm()) for k in w1)
    assert 0 < step < 0.5 * reinit


def test_stock_predict_and_evaluate_cover_all_labels(pipeline):
    summary = json.loads((pipeline["pred"] / "summary.json").read_text())
    labels = json.loads((pipeline["raw"] / "dataset.json").read_text())["labels"]
    foreground = {str(v) for k, v in labels.items() if k != "background"}
    assert set(summary["mean"]) == foreground
    assert len(summary["metric_per_case"]) == len(list((pipeline["raw"] / "labelsTs").glob("*.nii.gz")))


def _torchvision_importable() -> bool:
    return subprocess.run([sys.executable, "-c", "import torchvision"], capture_output=True).returncode == 0


@pytest.mark.slow
def test_stock_nnunetv2_train_via_ext_trainer(pipeline):
    if not _torchvision_importable():
        pytest.skip(
            "import torchvision fails here (CUDA build on CPU torch): nnU-Net's lookup of any trainer name "
            "but nnUNetTrainer crashes before reaching nnUNet_extTrainer"
        )
    from seganypet_nnunet.paths import trainer_ext_folder

    env = {**pipeline["env"], "nnUNet_extTrainer": str(trainer_ext_folder())}
    _sh(["nnUNetv2_train", str(DATASET_ID), "3d_fullres", "1", "-tr", TRAINER, "-p", PLANS, "-device", "cpu"], env)
    fold = pipeline["root"] / "results" / pipeline["raw"].name / f"{TRAINER}__{PLANS}__3d_fullres" / "fold_1"
    assert (fold / "checkpoint_final.pth").is_file()


@pytest.mark.slow
def test_fresh_training_and_baseline_with_the_same_budget(pipeline, tmp_path):
    """The issue's literal command (no --c) on a fresh fold, and the stock-behaviour baseline, both predicted."""
    env = pipeline["env"]
    for trainer, plans in ((TRAINER, PLANS), ("nnUNetTrainer_seganypet_tiny", "nnUNetPlansTiny")):
        _sh(["seganypet_train", str(DATASET_ID), "3d_fullres", "2", "-tr", trainer, "-p", plans, "-device", "cpu"], env)
        out = tmp_path / trainer
        _sh(
            [
                "nnUNetv2_predict",
                "-i",
                str(pipeline["raw"] / "imagesTs"),
                "-o",
                str(out),
                "-d",
                str(DATASET_ID),
                "-c",
                "3d_fullres",
                "-p",
                plans,
                "-tr",
                trainer,
                "-f",
                "2",
                "-device",
                "cpu",
                "-npp",
                "0",
                "-nps",
                "0",
            ],
            env,
        )
        assert len(list(out.glob("*.nii.gz"))) == 2
        shutil.rmtree(out)
