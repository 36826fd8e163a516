"""``-device`` for every console script: nnU-Net's default (cuda) and one line when the machine has no CUDA."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from seganypet_nnunet.cli_args import make_device

ENTRIES = {
    "seganypet_train": ("seganypet_nnunet.run.train", "train_entry", ["990", "3d_fullres", "0"]),
    "seganypet_predict": (
        "seganypet_nnunet.inference.predict",
        "predict_entry",
        ["-i", "in", "-o", "out", "-d", "990"],
    ),
    "seganypet_evaluate": (
        "seganypet_nnunet.evaluation.evaluate_cli",
        "evaluate_entry",
        ["-i", "i", "-ref", "r", "-o", "o", "-d", "990"],
    ),
}


def test_make_device_cpu_and_unknown():
    assert make_device("cpu") == torch.device("cpu")
    with pytest.raises(ValueError, match="-device must be one of cuda, cpu, mps"):
        make_device("tpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_default_fails_with_one_line_without_cuda(tmp_path):
    with pytest.raises(ValueError, match="no CUDA device .* -device cpu"):
        make_device("cuda")
    for command, (module, entry, args) in ENTRIES.items():
        code = f"import sys; sys.argv = [{command!r}, *{args!r}]; from {module} import {entry}; {entry}()"
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=300)
        assert r.returncode == 1, (command, r.stderr)
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and "no CUDA device" in lines[0] and "-device cpu" in lines[0], (command, r.stderr)
