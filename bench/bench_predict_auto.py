"""seganypet_predict (automatic) vs stock nnUNetv2_predict on the same model folder and cases: wall time and peak RSS
of each child process (resource.getrusage(RUSAGE_CHILDREN) deltas). Prints RATIOS from one run.

    python bench/bench_predict_auto.py [-d ID -c CFG -p PLANS -tr TRAINER]   (nnUNet_* env vars set)

Without -d it builds an UNTRAINED model folder (SegAnyPETPlannerTiny plans on synthetic small cases) and says so.
Targets: time <= 1.1x, memory <= 1.2x of nnUNetv2_predict.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time


def _run(cmd: list[str]) -> tuple[float, float]:
    """(wall s, peak RSS MiB of this child); children run one at a time so ru_maxrss is this child's peak."""
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode:
        raise RuntimeError(f"{cmd[0]} failed: {proc.stderr[-1500:]}")
    return wall, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-d", default=None)
    p.add_argument("-c", default="3d_fullres")
    p.add_argument("-p", default="SegAnyPETPlansTiny")
    p.add_argument("-tr", default="SegAnyPETTrainer")
    p.add_argument("-i", default=None, help="input folder (default: the dataset's imagesTs)")
    a = p.parse_args()
    if a.d is None:
        from _inference_model import untrained_whole_body_model

        raw, model = untrained_whole_body_model(996, "SegAnyPETPlannerTiny", num_train=2, num_test=2, size="small")
        a.d, a.i = "996", str(raw / "imagesTs")
        print(f"model: UNTRAINED SegAnyPETPlannerTiny plans on synthetic small cases ({model})")
    common = ["-i", a.i, "-d", a.d, "-c", a.c, "-p", a.p, "-tr", a.tr, "-f", "0", "-device", "cpu",
              "-npp", "1", "-nps", "1"]
    out = tempfile.mkdtemp(prefix="bench_predict_")
    # stock first: ru_maxrss of RUSAGE_CHILDREN is a running max, so the larger of the two is reported second
    stock_t, stock_m = _run(["nnUNetv2_predict", "-o", os.path.join(out, "stock"), *common])
    ours_cmd = [sys.executable, "-c", "from seganypet_nnunet.inference.predict import predict_entry as e; e()"]
    ours_t, ours_m = _run([*ours_cmd, "-o", os.path.join(out, "ours"), *common])
    print(f"nnUNetv2_predict  : {stock_t:.1f} s, peak RSS {stock_m:.0f} MiB")
    print(f"seganypet_predict : {ours_t:.1f} s, peak RSS <= {ours_m:.0f} MiB (running max over children)")
    print(f"RATIO time {ours_t / stock_t:.2f} (target <= 1.1) | RATIO memory <= {ours_m / stock_m:.2f} (target <= 1.2)")


if __name__ == "__main__":
    main()
