"""seganypet_serve at scanner size, driven by the real nninteractive-client over 127.0.0.1.

    python bench/bench_server.py [-m MODEL_FOLDER] [--targets 8] [--corrections 3] [--threads 2]

A 300 x 300 x 600 (z, y, x) PET image at 3 x 2.04 x 2.04 mm (54 M voxels; a synthetic adult whole body with low
positive background noise outside the body, as a scanner writes) is uploaded once; then, per target, a reset and a
first click on a hot spot (encoder + decoder), and correction clicks next to it (decoder only). Reports per request the
round trip through the client and the server's own time (its ``Server-Timing`` header: the session's work), the
difference being transport (HTTP, NNIA coding, the client's paste); and the bytes a target holds (``/lease_status``)
next to what a full-size logit buffer plus mask held before.

Without -m it plans an UNTRAINED model folder (SegAnyPETPlannerSmall plans on synthetic whole-body data); latency and
memory do not depend on the weights.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

SHAPE = (600, 300, 300)  # (z, y, x)
SPACING = (3.0, 2.04, 2.04)  # (z, y, x) mm


def scanner_image(seed: int = 0) -> tuple[np.ndarray, list[tuple[int, int, int]]]:
    """(z, y, x) float32 SUV of SHAPE and the hot-spot voxels (z, y, x) to click."""
    import SimpleITK as sitk

    from seganypet_nnunet.synthetic import SyntheticConfig
    from seganypet_nnunet.synthetic.case import make_case

    config = SyntheticConfig(size="whole_body", spacing=SPACING[::-1], max_lesions=12)
    case = make_case(seed, config)
    body = sitk.GetArrayFromImage(case.pet).astype(np.float32)[: SHAPE[0], : SHAPE[1], : SHAPE[2]]
    rng = np.random.default_rng(seed)
    image = rng.uniform(0.01, 0.05, SHAPE).astype(np.float32)
    off = [(n - b) // 2 for n, b in zip(SHAPE, body.shape, strict=True)]
    image[tuple(slice(o, o + b) for o, b in zip(off, body.shape, strict=True))] += body
    lesions = sitk.GetArrayFromImage(case.instances)[: SHAPE[0], : SHAPE[1], : SHAPE[2]]
    seeds = []
    for i in np.unique(lesions[lesions > 0]):
        vox = np.argwhere(lesions == i)
        seeds.append(tuple(int(v) for v in vox[len(vox) // 2] + off))
    while len(seeds) < 12:  # organs when there are few lesions: hot voxels far apart
        flat = np.argsort(image[::4, ::4, ::4], axis=None)[::-1][: 40 * (len(seeds) + 1)]
        vox = np.array(np.unravel_index(flat, image[::4, ::4, ::4].shape)).T * 4
        far = [v for v in vox if all(np.abs(v - s).max() > 40 for s in seeds)]
        seeds.append(tuple(int(x) for x in (far[0] if far else vox[0])))
    return image, seeds


def start_server(model: Path, threads: int) -> tuple[subprocess.Popen, str]:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    cmd = [sys.executable, "-c", "from seganypet_nnunet.server.cli import serve_entry; serve_entry()"]
    cmd += ["-m", str(model), "--port", "0", "-device", "cpu", "--max_sessions", "2"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    line = proc.stdout.readline()
    match = re.search(r"(http://[\d.]+:\d+)", line)
    if not match:
        proc.kill()
        raise SystemExit(f"server did not start: {line!r}")
    return proc, match.group(1)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-m", default=None, help="model folder (default: an untrained SegAnyPETPlannerSmall one)")
    p.add_argument("--targets", type=int, default=8)
    p.add_argument("--corrections", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    if a.m is None:
        sys.path.insert(0, str(Path(__file__).parent))
        from _inference_model import untrained_whole_body_model

        _, model = untrained_whole_body_model(996, "SegAnyPETPlannerSmall")
        print(f"model: UNTRAINED SegAnyPETPlannerSmall plans on synthetic whole-body data ({model})")
    else:
        model = Path(a.m)
    from nnInteractive.inference.remote.remote_session import nnInteractiveRemoteInferenceSession

    image, seeds = scanner_image()
    print(f"image (z, y, x) {image.shape} at {SPACING} mm = {image.size / 1e6:.0f} M voxels; {len(seeds)} hot spots")
    proc, url = start_server(model, a.threads)
    timing: list[float] = []

    def on_response(resp) -> None:
        m = re.search(r"dur=([\d.]+)", resp.headers.get("Server-Timing", ""))
        timing.append(float(m.group(1)) if m else float("nan"))

    kinds = ("set_image", "first click", "correction click", "initial seg")
    rows: dict[str, list[tuple[float, float]]] = {kind: [] for kind in kinds}
    memory, extent = [], []
    try:
        c = nnInteractiveRemoteInferenceSession(url, read_timeout=600)
        c._http.event_hooks["response"].append(on_response)

        def call(kind: str, fn) -> None:
            t0 = time.perf_counter()
            fn()
            rows[kind].append((1000 * (time.perf_counter() - t0), timing[-1]))

        call("set_image", lambda: c.set_image(image[None], {"spacing": list(SPACING)}))
        print(f"set_image: {rows['set_image'][0][0] / 1000:.1f} s", flush=True)
        rss_image = rss_mb(proc.pid)
        buffer = np.zeros(image.shape, np.uint8)
        c.set_target_buffer(buffer)
        rng = np.random.default_rng(1)
        for seed in seeds[: a.targets]:
            c.reset_interactions()
            call("first click", lambda s=seed: c.add_point_interaction(s, include_interaction=True))
            extent.append(int(np.prod([b - a for a, b in c._last_paste_bbox])) if c._last_paste_bbox else 0)
            for _ in range(a.corrections):
                near = tuple(int(v) for v in np.clip(np.array(seed) + rng.integers(-3, 4, 3), 0, np.array(SHAPE) - 1))
                call(
                    "correction click",
                    lambda s=near: c.add_point_interaction(s, include_interaction=bool(rng.integers(2))),
                )
            memory.append(c.lease_status())
        lesion = np.zeros(image.shape, np.uint8)  # a 30 mm lesion given as a segment (Slicer's segment switch)
        z, y, x = seeds[0]
        zz, yy, xx = np.ogrid[-5:6, -8:9, -8:9]
        lesion[z - 5 : z + 6, y - 8 : y + 9, x - 8 : x + 9] = (zz * 3.0) ** 2 + (yy * 2.04) ** 2 + (
            xx * 2.04
        ) ** 2 <= 225
        c.reset_interactions()
        call("initial seg", lambda: c.add_initial_seg_interaction(lesion, run_prediction=True))
        lesion_bytes = c.lease_status()["target_bytes"]
        rss_end = rss_mb(proc.pid)
        c.close()
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    print(
        f"\n{'request':18} {'n':>3} {'round trip ms (median / max)':>30} {'server ms (median)':>19} {'transport':>10}"
    )
    for kind, values in rows.items():
        if not values:
            continue
        rt, srv = np.array([v[0] for v in values]), np.array([v[1] for v in values])
        share = 1 - np.median(srv) / np.median(rt)
        print(
            f"{kind:18} {len(rt):3d} {np.median(rt):17.0f} / {rt.max():6.0f}      {np.median(srv):13.0f}"
            f"      {100 * share:5.0f} %"
        )
    held = np.array([m["target_bytes"] for m in memory]) / 2**20
    full = memory[0]["full_size_target_bytes"] / 2**20
    print(f"\nbytes per target (logits + mask + undo): median {np.median(held):.2f} MB, max {held.max():.2f} MB")
    print(f"a 30 mm lesion given as initial segmentation: {lesion_bytes / 1024:.1f} kB")
    print(f"first-click answers (the changed bbox): median {np.median(extent) / 1e6:.2f} M voxels")
    print(f"a full-size logit buffer + mask (before boxed.py) held {full:.0f} MB per target")
    print(f"server RSS: {rss_image:.0f} MB after set_image, {rss_end:.0f} MB at the end ({os.cpu_count()} CPUs)")


if __name__ == "__main__":
    main()
