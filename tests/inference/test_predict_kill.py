"""``kill -9`` of seganypet_predict leaves no worker processes behind (issue 24 item 5): every multiprocessing child
watches its parent (``errors.watch_parent``) and exits once the parent is gone."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
from inference_data import shared_model

ARGS = ["-d", "990", "-p", "SegAnyPETPlansTiny", "-f", "0", "-device", "cpu", "-npp", "2", "-nps", "2"]


def _wait_for(predicate, limit_s: float = 120.0, step_s: float = 0.2) -> bool:
    """Poll ``predicate`` until true or ``limit_s`` passed (an upper bound only: the test does not time anything)."""
    end = time.monotonic() + limit_s
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(step_s)
    return predicate()


def test_sigkill_of_predict_leaves_no_workers(model, tmp_path, monkeypatch):
    shared_model(None, monkeypatch)
    raw, _ = model
    (tmp_path / "in").mkdir()
    image = sorted((raw / "imagesTs").glob("*_0000.nii.gz"))[0]
    for k in range(24):  # enough cases that the workers are still busy when the command is killed
        shutil.copy(image, tmp_path / "in" / f"c{k:02d}_0000.nii.gz")
    script = Path(sys.executable).parent / "seganypet_predict"
    proc = subprocess.Popen(
        [str(script), "-i", str(tmp_path / "in"), "-o", str(tmp_path / "out"), *ARGS],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        env=os.environ.copy(),
    )
    children: list[psutil.Process] = []
    try:
        parent = psutil.Process(proc.pid)

        def workers_started() -> bool:
            children[:] = [
                c for c in parent.children(recursive=True) if "resource_tracker" not in " ".join(c.cmdline())
            ]
            return len(children) >= 1 or proc.poll() is not None

        assert _wait_for(workers_started), "seganypet_predict started no worker process"
        assert proc.poll() is None, "the run ended before it could be killed; add cases"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        assert _wait_for(lambda: not any(c.is_running() and c.status() != psutil.STATUS_ZOMBIE for c in children))
    finally:
        for c in children:  # only the processes this test started
            if c.is_running():
                c.kill()
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())  # nothing published
