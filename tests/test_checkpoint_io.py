"""A checkpoint whose pickle runs code is refused by EVERY loader of ours (the code never runs), with one line naming
the file; ``--trust_checkpoint`` / ``trusted=True`` is the explicit opt-in; our own checkpoints load weights_only.

The malicious file pickles ``open(marker, "w")``: the marker file appears exactly when the unpickler runs it.
"""

from __future__ import annotations

import shutil

import pytest
from bad_files import assert_one_line_error, malicious_checkpoint, malicious_plain_pickle, run_entry
from inference_data import shared_model

from seganypet_nnunet.checkpoint_io import CheckpointError, load_checkpoint

PLANS = "SegAnyPETPlansTiny"


@pytest.fixture
def evil(model, tmp_path, monkeypatch):
    """A copy of the shared model folder named ``Evil__...`` whose fold-0 checkpoint runs code; returns (folder,
    marker). Removed after the test (the shared results folder is read-only for the other tests)."""
    shared_model(None, monkeypatch)
    _, folder = model
    target = folder.parent / f"Evil__{PLANS}__3d_fullres"
    shutil.copytree(folder, target)
    marker = tmp_path / "CODE_RAN"
    malicious_checkpoint(
        target / "fold_0" / "checkpoint_final.pth", marker, like=folder / "fold_0" / "checkpoint_final.pth"
    )
    yield target, marker
    shutil.rmtree(target)


def test_load_checkpoint_refuses_and_trusted_opts_in(tmp_path):
    marker = tmp_path / "ran"
    for path in (malicious_checkpoint(tmp_path / "a.pth", marker), malicious_plain_pickle(tmp_path / "b.pth", marker)):
        with pytest.raises(CheckpointError, match=f"{path.name}: refused to load"):
            load_checkpoint(path)
        assert not marker.exists()
    load_checkpoint(tmp_path / "a.pth", trusted=True)
    assert marker.exists()  # the opt-in really unpickles everything


def test_our_untrained_checkpoints_load_weights_only(model):
    _, folder = model
    ckpt = load_checkpoint(folder / "fold_0" / "checkpoint_final.pth")
    assert ckpt["network_weights"] and ckpt["init_args"]["configuration"] == "3d_fullres"


def test_model_folder_and_session(evil):
    from seganypet_nnunet.inference.model_folder import load_model_folder
    from seganypet_nnunet.inference.session import SegAnyPETSession

    folder, marker = evil
    for load in (load_model_folder, SegAnyPETSession.from_model_folder):
        with pytest.raises(CheckpointError, match="fold_0/checkpoint_final.pth: refused to load"):
            load(folder)
        assert not marker.exists()
    assert load_model_folder(folder, trusted=True).network is not None and marker.exists()


@pytest.mark.parametrize("mode", ["automatic", "prompted"])
def test_predict(evil, model, tmp_path, capsys, mode):
    import json

    from seganypet_nnunet.inference.predict import predict_entry
    from seganypet_nnunet.prompts.prompt_file import SCHEMA

    folder, marker = evil
    raw, _ = model
    argv = ["-i", raw / "imagesTs", "-o", tmp_path / "out", "-d", "990", "-p", PLANS, "-tr", "Evil", "-f", "0",
            "-device", "cpu", "-npp", "0", "-nps", "0"]  # fmt: skip
    if mode == "prompted":
        doc = {"schema": SCHEMA, "cases": {"test00": {"targets": [{"name": "a", "points": [{"coord": [12, 18, 20]}]}]}}}
        (tmp_path / "p.json").write_text(json.dumps(doc))
        argv += ["--prompts", tmp_path / "p.json"]
    code, err = run_entry(predict_entry, argv, capsys)
    assert_one_line_error(code, err, "seganypet_predict", "fold_0/checkpoint_final.pth: refused to load")
    assert not marker.exists() and not (tmp_path / "out").exists()


def test_evaluate(evil, model, tmp_path, capsys):
    from seganypet_nnunet.evaluation.evaluate_cli import evaluate_entry

    folder, marker = evil
    raw, _ = model
    argv = ["-i", raw / "imagesTr", "-ref", raw / "labelsTr", "-o", tmp_path / "out", "-m", folder, "-f", "0",
            "-n_clicks", "1", "-device", "cpu"]  # fmt: skip
    code, err = run_entry(evaluate_entry, argv, capsys)
    assert_one_line_error(code, err, "seganypet_evaluate", "fold_0/checkpoint_final.pth: refused to load")
    assert not marker.exists() and not (tmp_path / "out").exists()


def _train_argv(*extra):
    return ["990", "3d_fullres", "0", "-p", PLANS, "-device", "cpu", *extra]


def test_train_pretrained_weights(model, tmp_path, capsys, monkeypatch):
    from seganypet_nnunet.run.train import train_entry

    shared_model(None, monkeypatch)
    marker = tmp_path / "CODE_RAN"
    for path in (malicious_checkpoint(tmp_path / "w.pth", marker), malicious_plain_pickle(tmp_path / "p.pth", marker)):
        code, err = run_entry(train_entry, _train_argv("-pretrained_weights", path), capsys)
        assert_one_line_error(code, err, "seganypet_train", f"{path.name}: refused to load")
        assert not marker.exists()


def test_train_continue_and_trainer_hook(model, tmp_path, capsys, monkeypatch):
    """``--c`` (any registered trainer) and SeganypetBaseTrainer.load_checkpoint (the hook nnU-Net calls)."""
    from seganypet_nnunet.run.train import build_trainer, train_entry
    from seganypet_nnunet.trainers.SegAnyPETTrainer import SegAnyPETTrainer

    shared_model(None, monkeypatch)
    _, folder = model
    marker = tmp_path / "CODE_RAN"
    out = folder.parent / f"nnUNetTrainer__{PLANS}__3d_fullres"
    try:
        malicious_checkpoint(out / "fold_0" / "checkpoint_latest.pth", marker)
        code, err = run_entry(train_entry, _train_argv("-tr", "nnUNetTrainer", "--c"), capsys)
        assert_one_line_error(code, err, "seganypet_train", "fold_0/checkpoint_latest.pth: refused to load")
        assert not marker.exists()
    finally:
        shutil.rmtree(out, ignore_errors=True)
    import torch

    trainer = build_trainer(SegAnyPETTrainer, "990", "3d_fullres", 0, PLANS, device=torch.device("cpu"))
    path = malicious_checkpoint(tmp_path / "hook.pth", marker)
    with pytest.raises(CheckpointError, match="hook.pth: refused to load"):
        trainer.load_checkpoint(str(path))
    assert not marker.exists()


def test_upstream_training_checkpoint_loads_without_trust(tmp_path):
    """The dict upstream's train.py saves (AdamW/MultiStepLR state, numpy scalars, argparse.Namespace) is read by the
    weights_only unpickler with the allowlist; the allowlist does not leak into torch's process-wide list."""
    import argparse

    import numpy as np
    import torch
    from released_files import upstream_training_checkpoint

    sd = {"a.weight": torch.randn(2, 3), "a.bias": torch.zeros(2)}
    path = upstream_training_checkpoint(tmp_path / "up.pth", sd)
    ckpt = load_checkpoint(path)
    assert isinstance(ckpt["args"], argparse.Namespace) and ckpt["args"].model_type == "vit_b_ori"
    assert isinstance(ckpt["best_loss"], np.float64) and isinstance(ckpt["dices"][1], np.float32)
    assert ckpt["optimizer_state_dict"]["param_groups"][1]["lr"] == 8e-6
    assert torch.equal(ckpt["model_state_dict"]["a.weight"], sd["a.weight"])
    assert argparse.Namespace not in torch.serialization.get_safe_globals()
    with pytest.raises(Exception, match="Unsupported global"):  # outside our loader, torch's default list applies
        torch.load(path, weights_only=True)


def test_numpy_object_scalar_refused(tmp_path):
    """numpy's scalar constructor with an object dtype (bytes read as a pointer) is refused, not rebuilt."""
    import numpy as np
    import torch

    class ObjectScalar:
        def __reduce__(self):
            return (np._core.multiarray.scalar, (np.dtype("O"), b"\x00" * 8))

    torch.save({"x": ObjectScalar()}, tmp_path / "obj.pth")
    with pytest.raises(CheckpointError, match="obj.pth: refused to load"):
        load_checkpoint(tmp_path / "obj.pth")


def test_refusal_names_every_global_on_one_line(tmp_path):
    marker = tmp_path / "ran"
    path = malicious_checkpoint(tmp_path / "m.pth", marker)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    assert "globals io.open" in str(info.value) and "\n" not in str(info.value)
    assert not marker.exists()
    with pytest.raises(CheckpointError, match="is a directory"):
        load_checkpoint(tmp_path)
