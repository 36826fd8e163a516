"""seganypet_predict (automatic) vs stock nnUNetv2_predict on the same model folder and cases: wall time and peak RSS
(largest process of each command's tree, measured by a fresh wrapper process per run). Prints RATIOS from one run;
the two commands alternate for ``-repeats`` rounds and the fastest round of each counts.

    python bench/bench_predict_auto.py [-d ID -c CFG -p PLANS -tr TRAINER]   (nnUNet_* env vars set)

Without -d it builds an UNTRAINED model folder (SegAnyPETPlannerTiny plans on synthetic small cases) and says so.
Targets: time <= 1.1x, memory <= 1.2x of nnUNetv2_predict.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

_WRAPPER = (
    "import resource, subprocess, sys; r = subprocess.run(sys.argv[1:]); "
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); sys.exit(r.returncode)"
)


def _run(cmd: list[str]) -> tuple[float, float]:
    """(wall s, peak RSS MiB): a fresh wrapper process runs ``cmd`` so ru_maxrss covers this command's tree only."""
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", _WRAPPER, *cmd], capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode:
        raise RuntimeError(f"{cmd[0]} failed: {proc.stderr[-1500:]}")
    return wall, int(proc.stdout.strip().splitlines()[-1]) / 1024


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-d", default=None)
    p.add_argument("-c", default="3d_fullres")
    p.add_argument("-p", default="SegAnyPETPlansTiny")
    p.add_argument("-tr", default="SegAnyPETTrainer")
    p.add_argument("-i", default=None, help="input folder (default: the dataset's imagesTs)")
    p.add_argument("-repeats", type=int, default=2, help="alternating rounds; the fastest of each counts")
    a = p.parse_args()
    if a.d is None:
        from _inference_model import untrained_whole_body_model

        raw, model = untrained_whole_body_model(996, "SegAnyPETPlannerTiny", num_train=2, num_test=2, size="small")
        a.d, a.i = "996", str(raw / "imagesTs")
        print(f"model: UNTRAINED SegAnyPETPlannerTiny plans on synthetic small cases ({model})")
    if a.i is None:
        from nnunetv2.utilities.dataset_name_id_conversion import maybe_convert_to_dataset_name

        from seganypet_nnunet.paths import nnunet_folder

        a.i = str(nnunet_folder("nnUNet_raw") / maybe_convert_to_dataset_name(a.d) / "imagesTs")
    common = [
        "-i",
        a.i,
        "-d",
        a.d,
        "-c",
        a.c,
        "-p",
        a.p,
        "-tr",
        a.tr,
        "-f",
        "0",
        "-device",
        "cpu",
        "-npp",
        "1",
        "-nps",
        "1",
    ]
    out = tempfile.mkdtemp(prefix="bench_predict_")
    ours_cmd = [sys.executable, "-c", "from seganypet_nnunet.inference.predict import predict_entry as e; e()"]
    stock, ours = [], []
    for r in range(a.repeats):
        stock.append(_run(["nnUNetv2_predict", "-o", os.path.join(out, f"stock{r}"), *common]))
        ours.append(_run([*ours_cmd, "-o", os.path.join(out, f"ours{r}"), *common]))
    (stock_t, stock_m), (ours_t, ours_m) = min(stock), min(ours)
    print(f"cases: {a.i}; model -d {a.d} -c {a.c} -p {a.p} -tr {a.tr} -f 0, CPU, {a.repeats} alternating rounds")
    for name, (t, m), rounds in (("nnUNetv2_predict ", min(stock), stock), ("seganypet_predict", min(ours), ours)):
        print(f"{name}: {t:.1f} s, peak RSS {m:.0f} MiB  (all rounds, s: {[round(r[0], 1) for r in rounds]})")
    print(f"RATIO time {ours_t / stock_t:.2f} (target <= 1.1) | RATIO memory {ours_m / stock_m:.2f} (target <= 1.2)")


if __name__ == "__main__":
    main()
