"""machine.py: the machine line names the CPU, its cores, the memory, torch and the GPU (or its absence)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import torch

from seganypet_nnunet.machine import machine_line

ROOT = Path(__file__).resolve().parents[1]


def test_machine_line_names_cores_torch_and_gpu() -> None:
    line = machine_line()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert f"{cores} cores" in line
    assert f"torch {torch.__version__}" in line
    assert ("GPU " in line) == torch.cuda.is_available() and ("no GPU" in line) != torch.cuda.is_available()


def test_script_prints_the_line() -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "machine_line.py")], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == machine_line()
