"""The GPU path in one command: training (AMP as nnU-Net), SAM-Med3D, CPCL, torchrun, prediction and clicks on CUDA.

    python bench/gpu_check.py                      # one CUDA GPU, an estimated 5-6 min on an H100 (cap: 8 min)
    python bench/gpu_check.py -device cpu          # tiny CPU mode (Tiny plans, a handful of iterations; the test suite)

From a fresh clone with its CUDA torch kept (``pip install -e .``), each step runs in its own process under its own
timeout (one hang cannot eat the device budget) and steps whose inputs failed are skipped:

  env         torch / CUDA / GPU / NCCL versions
  data        ``seganypet_make_synthetic``: whole-body cases (128 x 128 x 250 at 4 mm; ``--small`` 64^3 in tiny mode),
              half of the training labels corrupted (CPCL's low-quality cases)
  plan        ``seganypet_plan_and_preprocess`` with the default planner (SegAnyPETPlanner + nnU-Net's baseline plans;
              tiny: SegAnyPETPlannerTiny, no baseline)
  throughput  SegAnyPETTrainer and nnUNetTrainer (the real classes through our launcher's ``build_trainer``) on the
              same plans and preprocessed data, plus nnUNetTrainer on the baseline nnUNetPlans: warm-up, then ``-n``
              timed iterations each, interleaved in chunks of 5; median s/it, it/s, ratio, peak GPU memory. AMP is
              nnU-Net's: autocast fp16 + GradScaler on cuda, fp32 on cpu; torch.compile off unless ``--compile``
  sam_med3d   SamMed3DTrainer (released vit_b_ori, random init, 128^3, batch 2, 11 click iterations; tiny: a 32^3
              2-block config) on the check's data: finite losses, every part updated, GradScaler not stuck
  cpcl        SegAnyPETTrainerCPCL: the same checks, and the CPCL path must run on a low-quality case
  torchrun    ``torchrun --standalone --nproc_per_node=1 -m seganypet_nnunet.run.train ... -tr SegAnyPETTrainer_tiny``
              (nccl on cuda, gloo on cpu), 2 epochs x 3 iterations + nnU-Net's final validation (tiny: the
              ``_noMirroring`` variant, no test-time mirroring); its model is used by
  predict     ``seganypet_predict`` (automatic) vs ``nnUNetv2_predict``, same model, flags and test case: wall time,
              peak GPU memory (torch allocator) and peak RSS, voxel agreement of the two label maps
  session     ``SegAnyPETSession`` on the whole-body test case: set_image, first click, correction click (s, GiB)

Writes ``-o`` (JSON: settings, versions, per-step status/seconds/figures) and prints one table. Exits 1, naming the
step, on any error, non-finite loss or timeout. Timeouts are per step (``TIMEOUTS``; tiny mode doubles them for a
slow shared CPU); the total stays within ``-budget`` seconds (default 480) by skipping what would start too late.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
# Per-step wall-clock caps in seconds on a GPU machine (the expected times are well below; see docs/gpu.md).
TIMEOUTS = {
    "env": 60,
    "data": 90,
    "plan": 150,
    "throughput": 180,
    "sam_med3d": 120,
    "cpcl": 90,
    "torchrun": 180,
    "predict": 150,
    "session": 90,
}
NEEDS = {
    "plan": "data",
    "throughput": "plan",
    "sam_med3d": "plan",
    "cpcl": "plan",
    "torchrun": "plan",
    "predict": "torchrun",
    "session": "torchrun",
}
ORDER = list(TIMEOUTS)


def tiny_sam_config() -> dict:
    """The tests' small SamMed3DConfig (tests/trainers/test_autocast.py): 32^3 crop, 8^3 tokens, 2 blocks, width 48."""
    return {
        "img_size": 32,
        "patch_size": 4,
        "embed_dim": 48,
        "depth": 2,
        "num_heads": 2,
        "window_size": 8,
        "global_attn_indexes": [1],
        "prompt_embed_dim": 48,
        "mask_in_chans": 4,
        "iou_head_hidden_dim": 16,
    }


def run_settings(a: argparse.Namespace) -> dict:
    """Sizes of the run (docs/gpu.md): GPU mode sized for about 5-6 min on an H100; tiny for a 2-core CPU."""
    tiny = a.tiny or a.device == "cpu"
    cfg = {
        "device": a.device,
        "tiny": tiny,
        "compile": a.compile,
        "num_train": 4 if tiny else 6,
        "np": 1 if tiny else 8,
        "planner": "SegAnyPETPlannerTiny" if tiny else "SegAnyPETPlanner",
        "plans": "SegAnyPETPlansTiny" if tiny else "SegAnyPETPlans",
        "baseline": not tiny,
        "baseline_plans": "nnUNetPlans",
        "iterations": a.n if a.n is not None else (3 if tiny else 20),
        "warmup": 1 if tiny else 3,
        "sam_config": tiny_sam_config() if tiny else None,
        "sam_clicks": 3 if tiny else 11,
        "sam_iterations": 1 if tiny else 3,
        "cpcl_iterations": 2 if tiny else 4,
    }
    return cfg


def child_env(work: Path, cfg: dict) -> dict:
    env = dict(os.environ)
    for name in ("raw", "preprocessed", "results"):
        env[f"nnUNet_{name}"] = str(work / f"nnUNet_{name}")
    env["nnUNet_compile"] = "t" if cfg["compile"] else "f"
    env.setdefault("nnUNet_def_n_proc", "1" if cfg["tiny"] else "8")
    if cfg["tiny"]:
        env.setdefault("nnUNet_n_proc_DA", "0")  # in-process augmentation: no worker start-up on a 2-core CPU
    env["PYTHONUNBUFFERED"] = "1"
    return env


def run_step(name: str, work: Path, env: dict, timeout: float) -> dict:
    """One step in a fresh process group; kills the group at ``timeout``. Returns status, seconds, result/error."""
    log = work / "logs" / f"step_{name}.log"
    out = work / "steps" / f"{name}.json"
    cmd = [sys.executable, str(HERE / "gpu_check.py"), "--step", name, "-work", str(work)]
    t0 = time.perf_counter()
    with open(log, "w") as f:
        proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        next_beat = 30.0
        while proc.poll() is None:
            elapsed = time.perf_counter() - t0
            if elapsed > timeout:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                return {
                    "status": "TIMEOUT",
                    "seconds": round(elapsed, 1),
                    "error": f"killed after {timeout:.0f} s",
                    "log": str(log),
                }
            if elapsed > next_beat:
                last = [ln for ln in log.read_text(errors="replace").splitlines() if ln.strip()][-1:]
                print(f"      ... {name} {elapsed:.0f} s: {last[0][:100] if last else ''}", flush=True)
                next_beat += 30.0
            time.sleep(0.5)
    seconds = round(time.perf_counter() - t0, 1)
    if proc.returncode == 0 and out.is_file():
        return {"status": "ok", "seconds": seconds, "result": json.loads(out.read_text())}
    tail = log.read_text(errors="replace").strip().splitlines()
    error = next((ln for ln in reversed(tail) if "Error" in ln or "error" in ln), tail[-1] if tail else "no output")
    return {"status": "FAILED", "seconds": seconds, "error": error[:300], "log": str(log)}


def figures(name: str, r: dict) -> list[tuple[str, str]]:
    """(label, figures) rows of the table for one step's result."""
    if name == "env":
        return [("device", f"{r.get('gpu', 'cpu')}; torch {r['torch']} cuda {r.get('cuda')} nccl {r.get('nccl')}")]
    if name == "data":
        return [("synthetic set", f"{r['cases']} cases, test image {r['test_image_size_ijk']} (i,j,k)")]
    if name == "plan":
        return [("plans", f"{r['plans']}: patch {r['patch']} batch {r['batch']} stages {r['stages']}")]
    if name == "throughput":
        rows = []
        for key in [k for k in r if isinstance(r[k], dict)]:
            v = r[key]
            peak = f", peak {v['peak_gib']} GiB" if v["peak_gib"] is not None else ""
            speed = f"{v['it_per_s']:.2f} it/s ({v['s_per_it']:.3f} s/it, step {v['s_per_it_step']:.3f})"
            rows.append((f"train {key} ({v['plans']})", speed + peak))
        same = f"{r['ratio_it_per_s']:.2f} (same plans, {r['iterations']} timed it)"
        rows.append(("ratio SegAnyPET / nnU-Net", same))
        return rows
    if name in ("sam_med3d", "cpcl"):
        peak = f", peak {r['peak_gib']} GiB" if r["peak_gib"] is not None else ""
        extra = f", CPCL on {r['cpcl_iterations']}" if name == "cpcl" else f", {r['config']}"
        return [(name, f"{r['iterations']} it, {r['s_per_it_median']:.2f} s/it, losses {r['losses']}{peak}{extra}")]
    if name == "torchrun":
        return [("torchrun 1 rank", f"{r['backend']}, {r['rank_device']}, epoch losses {r['epoch_train_losses']}")]
    if name == "predict":
        rows = []
        for key in ("nnUNetv2_predict", "seganypet_predict"):
            v = r[key]
            gpu = f", peak GPU {v['peak_gpu_gib']} GiB" if v.get("peak_gpu_gib") is not None else ""
            rows.append((key, f"{v['wall_s']:.1f} s{gpu}, peak RSS {v['peak_rss_mib']:.0f} MiB"))
        rows.append(("predict ratio / agreement", f"time {r['ratio_time']:.2f}, voxels {r['voxel_agreement']}"))
        return rows
    if name == "session":
        peak = f", peak {r['peak_gib']} GiB" if r["peak_gib"] is not None else ""
        return [
            (
                "session clicks",
                f"set_image {r['load_and_set_image_s']} s, first {r['first_click_s']} s, "
                f"correction ({r['correction']}) {r['correction_click_s']} s{peak}",
            )
        ]
    return [(name, json.dumps(r)[:120])]


def print_table(report: dict) -> None:
    rows = []
    for name in ORDER:
        s = report["steps"].get(name, {"status": "skipped", "seconds": 0.0})
        if s["status"] == "ok":
            rows += [(name, "ok", s["seconds"], label, fig) for label, fig in figures(name, s["result"])]
        else:
            rows.append((name, s["status"], s["seconds"], name, s.get("error", "")))
    print("\n| step | status | wall s | what | figures |\n|---|---|---|---|---|")
    for step, status, secs, label, fig in rows:
        print(f"| {step} | {status} | {secs:.1f} | {label} | {fig} |")
    print(
        f"\ntotal {report['total_s']:.0f} s, device {report['settings']['device']}, tiny {report['settings']['tiny']}"
        f" -> {'ALL OK' if report['ok'] else 'FAILED'}; JSON: {report['json']}"
    )


def main_driver(a: argparse.Namespace) -> int:
    cfg = run_settings(a)
    work = Path(a.work) if a.work else Path(tempfile.mkdtemp(prefix="gpu_check_"))
    for sub in ("logs", "steps", "nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"):
        (work / sub).mkdir(parents=True, exist_ok=True)
    (work / "config.json").write_text(json.dumps(cfg, indent=1))
    env = child_env(work, cfg)
    out = Path(a.o) if a.o else work / "gpu_check.json"
    report = {"settings": cfg, "work": str(work), "json": str(out), "steps": {}, "ok": False}
    scale = 2.0 if cfg["tiny"] else 1.0
    t_start = time.perf_counter()
    print(f"gpu_check: device {cfg['device']}, tiny {cfg['tiny']}, work {work}", flush=True)
    for i, name in enumerate(a.steps or ORDER, 1):
        need = NEEDS.get(name)
        left = a.budget - (time.perf_counter() - t_start)
        if need and report["steps"].get(need, {}).get("status") != "ok" and need in (a.steps or ORDER):
            report["steps"][name] = {"status": "skipped", "seconds": 0.0, "error": f"needs {need}"}
            print(f"[{i}/{len(ORDER)}] {name}: skipped (needs {need})", flush=True)
            continue
        if left < 10:
            report["steps"][name] = {"status": "skipped", "seconds": 0.0, "error": f"-budget {a.budget} s spent"}
            print(f"[{i}/{len(ORDER)}] {name}: skipped (budget spent)", flush=True)
            continue
        print(f"[{i}/{len(ORDER)}] {name} ...", flush=True)
        res = run_step(name, work, env, min(TIMEOUTS[name] * scale, left))
        report["steps"][name] = res
        detail = "" if res["status"] == "ok" else f": {res['error']} (log {res['log']})"
        print(f"[{i}/{len(ORDER)}] {name}: {res['status']} in {res['seconds']:.1f} s{detail}", flush=True)
    report["total_s"] = round(time.perf_counter() - t_start, 1)
    report["ok"] = all(s["status"] == "ok" for s in report["steps"].values())
    out.write_text(json.dumps(report, indent=1))
    print_table(report)
    if not report["ok"]:
        bad = [f"{n} ({s['status']})" for n, s in report["steps"].items() if s["status"] != "ok"]
        print(f"\nGPU CHECK FAILED: {', '.join(bad)}", file=sys.stderr, flush=True)
        return 1
    return 0


def main_step(a: argparse.Namespace) -> int:
    """``--step NAME``: one step in this process; writes WORK/steps/NAME.json."""
    sys.path.insert(0, str(HERE))
    import _gpu_check_model as model
    import _gpu_check_steps as steps
    from _gpu_check_steps import say

    module = model if a.step in ("torchrun", "predict", "session") else steps
    step = getattr(module, f"step_{a.step}")

    work = Path(a.work)
    cfg = json.loads((work / "config.json").read_text())
    say(f"step {a.step}")
    result = step(cfg, work)
    (work / "steps" / f"{a.step}.json").write_text(json.dumps(result, indent=1))
    say(f"step {a.step} done: {json.dumps(result)[:300]}")
    return 0


def main_measure(cmd: list[str]) -> None:
    """``--measure CMD ...``: runs the installed console script CMD (its ``console_scripts`` entry point, so the same
    interpreter and install as this check, never another one found on PATH) in this process, then prints a
    ``MEASURED {...}`` line with its peak memory (torch allocator on cuda, RSS of this process and its workers)."""
    import atexit
    import resource
    from importlib.metadata import entry_points

    def report() -> None:
        rss = max(resource.getrusage(r).ru_maxrss for r in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
        peak = {"peak_rss_mib": rss / 1024, "peak_gpu_gib": None}
        torch = sys.modules.get("torch")
        if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
            peak["peak_gpu_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
        print("MEASURED " + json.dumps(peak), flush=True)

    found = [ep for ep in entry_points(group="console_scripts") if ep.name == cmd[0]]
    if not found:
        raise SystemExit(f"gpu_check --measure: no installed console script {cmd[0]!r}")
    atexit.register(report)
    sys.argv = list(cmd)
    sys.exit(found[0].load()())


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--measure":
        main_measure(sys.argv[2:])
        return 0
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-device", default="cuda", choices=("cuda", "cpu"), help="cuda (default) or cpu (implies --tiny)")
    p.add_argument("--tiny", action="store_true", help="Tiny plans, small cases, a handful of iterations")
    p.add_argument("-n", type=int, default=None, help="timed training iterations per trainer (default 20; tiny 3)")
    p.add_argument("-o", default=None, help="JSON report (default WORK/gpu_check.json)")
    p.add_argument("-work", dest="work", default=None, help="work folder (default: a new temp folder)")
    p.add_argument("-budget", type=float, default=480.0, help="total seconds; later steps are skipped past it")
    p.add_argument("-steps", nargs="+", choices=ORDER, default=None, help="run only these steps (debugging)")
    p.add_argument("--compile", action="store_true", help="let nnU-Net torch.compile (off by default: minutes)")
    p.add_argument("--step", default=None, help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.step:
        return main_step(a)
    return main_driver(a)


if __name__ == "__main__":
    sys.exit(main())
