"""torchrun + gloo on CPU, 2 ranks x 1 thread: the prompted path's explicit gradient all-reduce, checked for real.

One module-scoped scenario (tiny plans, 2 epochs x 2 iterations):
run A trains epoch 0 (step 0 on a fixed global batch, deterministic prompts), writes checkpoint_latest.pth, and rank 1
SIGKILLs itself in epoch 1; run B resumes both ranks with ``--c`` and finishes (epoch 1 + final validation).
The one-process reference (same weights, each rank's slice of the batch in turn, same targets and clicks, 1 thread)
runs in this process.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from ddp_worker import SegAnyPETTrainer_ddptest

from seganypet_nnunet.run.distributed import RankInfo, launched_by_torchrun, timeout_from_env

DATASET_ID = 901
PLANS = "SegAnyPETPlansTiny"
WORKER = str(Path(__file__).with_name("ddp_worker.py"))
HANG_GUARD_S = 300  # a run that does not end by then is a hang (the test fails instead of blocking the suite)


def _torchrun(out: Path, env: dict[str, str], *extra: str) -> subprocess.CompletedProcess:
    out.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    cmd += ["--max_restarts", "0", WORKER, str(out), str(DATASET_ID), PLANS, *extra]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=HANG_GUARD_S)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Plans a tiny dataset, runs A (killed) and B (resumed); yields paths and both CompletedProcess objects."""
    from seganypet_nnunet.run.plan_and_preprocess import plan_and_preprocess
    from seganypet_nnunet.synthetic import SyntheticConfig, make_dataset

    root = tmp_path_factory.mktemp("ddp")
    with pytest.MonkeyPatch.context() as mp:
        for key in ("raw", "preprocessed", "results"):
            (root / key).mkdir()
            mp.setenv(f"nnUNet_{key}", str(root / key))
        mp.setenv("nnUNet_def_n_proc", "1")
        mp.setenv("nnUNet_n_proc_DA", "1")  # nnU-Net's planner crashes with 0
        config = SyntheticConfig(size="small", spacing=(6.0, 6.0, 10.0), max_lesions=2)
        make_dataset(DATASET_ID, num_train=4, num_test=0, config=config)
        plan_and_preprocess(
            [DATASET_ID], planner="SegAnyPETPlannerTiny", configurations=["3d_fullres"], num_processes=1, baseline=False
        )
        env = {**os.environ, "nnUNet_n_proc_DA": "0", "OMP_NUM_THREADS": "1", "SEGANYPET_DIST_TIMEOUT": "60"}
        fold = root / "results" / "Dataset901_SyntheticPET" / "SegAnyPETTrainer_ddptest__SegAnyPETPlansTiny__3d_fullres"
        killed = _torchrun(root / "A", {**env, "DDPTEST_KILL_AT": "1"})
        latest_after_kill = (fold / "fold_0" / "checkpoint_latest.pth").is_file()
        resumed = _torchrun(root / "B", env, "--c")
        yield {"root": root, "A": root / "A", "B": root / "B", "fold": fold / "fold_0", "killed": killed,
               "latest_after_kill": latest_after_kill, "resumed": resumed, "mp": mp}  # fmt: skip


def _npz(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as f:
        return dict(f)


def test_killed_rank_stops_the_job_with_a_clear_error(runs):
    killed = runs["killed"]
    log = killed.stdout + killed.stderr
    assert killed.returncode != 0, log[-3000:]
    assert "ChildFailedError" in log and "SIGKILL" in log, log[-3000:]
    assert runs["latest_after_kill"]  # epoch 0 was checkpointed before the kill
    assert not (runs["A"] / "weights_rank0_epoch1.npz").exists()  # rank 0 did not finish epoch 1 alone


def test_ranks_hold_bit_identical_weights(runs):
    for out, epoch in ((runs["A"], 0), (runs["B"], 1)):
        w0, w1 = _npz(out / f"weights_rank0_epoch{epoch}.npz"), _npz(out / f"weights_rank1_epoch{epoch}.npz")
        assert w0.keys() == w1.keys() and len(w0) > 10
        for k in w0:
            np.testing.assert_array_equal(w0[k], w1[k], err_msg=k)


def test_resume_continues_every_rank_from_the_same_checkpoint(runs):
    resumed = runs["resumed"]
    assert resumed.returncode == 0, (resumed.stdout + resumed.stderr)[-4000:]
    assert (runs["fold"] / "checkpoint_final.pth").is_file()
    assert sorted(p.name for p in runs["B"].glob("weights_*.npz")) == [
        "weights_rank0_epoch1.npz",
        "weights_rank1_epoch1.npz",
    ]  # both ranks started at epoch 1
    logs = "".join(p.read_text() for p in runs["fold"].glob("training_log_*.txt"))
    assert "DDP: rank 0, device cpu" in logs and "DDP: rank 1" not in logs  # logs by global rank 0 only


def test_all_reduced_gradients_equal_the_mean_of_one_process_gradients_per_slice(runs, tmp_path):
    """Each rank's gradient after the all-reduce is the mean of the one-process gradients of the two batch slices.

    That mean is the gradient of the concatenated batch in exact arithmetic (the loss is a per-sample mean, instance
    norm and the click loop act per sample, and batch Dice is off). The reference is taken per slice, 1 thread, like
    each rank, so it repeats every forward decision (leaky-ReLU sides, thresholded predictions that place correction
    clicks) exactly: against the concatenated batch a float32 reordering can flip one of them and move a tensor's
    gradient by more than any tolerance that still means something (three CI failures, 2026-11).
    """
    from seganypet_nnunet.run.train import build_trainer

    mp = runs["mp"]
    mp.setenv("nnUNet_results", str(tmp_path / "results"))  # the reference writes its log elsewhere
    mp.setenv("nnUNet_preprocessed", str(runs["root"] / "preprocessed"))
    trainer = build_trainer(
        SegAnyPETTrainer_ddptest, str(DATASET_ID), "3d_fullres", 0, PLANS, device=torch.device("cpu")
    )
    trainer.initialize()
    assert not trainer.configuration_manager.batch_dice  # else the per-slice mean is not the batch gradient
    trainer.network.train()
    initial = {k: torch.from_numpy(v) for k, v in _npz(runs["A"] / "initial_weights.npz").items()}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as each rank (OMP_NUM_THREADS=1)
    try:
        per_slice = []
        for i, batch_slice in enumerate(((0, 1), (1, 2))):
            trainer.network.load_state_dict(initial)  # train_step also steps the optimizer
            trainer.out, trainer.batch_slice, trainer.steps_this_epoch = str(tmp_path / str(i)), batch_slice, 0
            Path(trainer.out).mkdir()
            trainer.train_step({"data": None, "target": None})  # replaced by the slice of the fixed batch
            per_slice.append(_npz(tmp_path / str(i) / "grads_rank0.npz"))
    finally:
        torch.set_num_threads(threads)
    reference = {k: (per_slice[0][k].astype(np.float64) + per_slice[1][k]) / 2 for k in per_slice[0]}
    # Conv biases that feed a normalisation have zero gradient in exact arithmetic (what is stored is float32 noise);
    # errors are measured against a floor tied to the largest tensor's norm.
    floor = 1e-5 * max(float(np.linalg.norm(g)) for g in reference.values())
    for rank in (0, 1):
        grads = _npz(runs["A"] / f"grads_rank{rank}.npz")
        extra = set(grads) - set(reference)  # DDP gives the coarsest deep-supervision output weight 1e-6, not 0
        assert set(reference) <= set(grads) and all(".seg_layers." in k for k in extra), extra
        for k in reference:
            # What remains is float32 rounding of the average and that 1e-6 weight; a wrong reduction (sum instead of
            # mean, a rank left out, a missing all-reduce) moves the whole tensor by 50-100 %.
            ref, got = reference[k], grads[k].astype(np.float64)
            assert float(np.linalg.norm(got - ref)) <= 1e-3 * float(np.linalg.norm(ref)) + floor, f"rank {rank} {k}"
            tol = 1e-3 * float(np.abs(ref).max()) + floor
            np.testing.assert_allclose(got, ref, rtol=0, atol=tol, err_msg=f"rank {rank} {k}")
        if rank == 1:  # after the all-reduce both ranks hold the same average, bit for bit
            ours = _npz(runs["A"] / "grads_rank0.npz")
            assert all(np.array_equal(ours[k], grads[k]) for k in grads)
    assert any(np.abs(g).max() > 0 for k, g in reference.items() if "image_encoder" not in k)  # prompt head trained
    # The two slices' gradients differ (median over the tensors that carry signal: ~70 %), so a rank left out fails.
    signal = [k for k in reference if np.linalg.norm(reference[k]) > 100 * floor]
    spread = [np.linalg.norm(per_slice[0][k] - per_slice[1][k]) / np.linalg.norm(reference[k]) for k in signal]
    assert len(signal) > len(reference) // 2 and np.median(spread) > 0.1, np.median(spread)


def test_rank_info_from_torchrun_environment():
    env = {
        "RANK": "3",
        "LOCAL_RANK": "1",
        "WORLD_SIZE": "4",
        "LOCAL_WORLD_SIZE": "2",
        "MASTER_ADDR": "h",
        "MASTER_PORT": "1",
    }
    assert launched_by_torchrun(env) and not launched_by_torchrun({"RANK": "0"})
    assert RankInfo.from_env(env) == RankInfo(rank=3, local_rank=1, world_size=4, local_world_size=2)
    with pytest.raises(ValueError, match="MASTER_PORT"):
        RankInfo.from_env({k: v for k, v in env.items() if k != "MASTER_PORT"})
    with pytest.raises(ValueError, match="inconsistent"):
        RankInfo.from_env({**env, "RANK": "4"})
    assert timeout_from_env({"SEGANYPET_DIST_TIMEOUT": "42"}).total_seconds() == 42
    with pytest.raises(ValueError, match="SEGANYPET_DIST_TIMEOUT"):
        timeout_from_env({"SEGANYPET_DIST_TIMEOUT": "soon"})
