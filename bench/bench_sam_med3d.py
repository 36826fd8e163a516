"""Released SAM-Med3D / SegAnyPET network (SamMed3DNet) in our session: image-encoder time vs one correction click.

Usage: python bench/bench_sam_med3d.py [--device cpu|cuda] [--size whole_body|small] [--repeats 3] [--clicks 5]

Builds a synthetic whole-body PET case, imports RANDOM weights in the released file format with
``import_checkpoint`` (zero-shot accuracy with random weights is meaningless: timings only), opens a
``SegAnyPETSession`` on it (no object following, so a click touches one 128^3 crop), and measures in one run:

- encoder: ``SamMed3DNet.encode`` of one 128^3 crop (z-score + ViT-B), median of ``--repeats``;
- click: one correction click on the cached embedding through the session = prompt encoder + mask decoder +
  trilinear upsampling + mapping the crop back to the ORIGINAL image grid (``add_point``), median of ``--clicks``;
- their ratio (target: click <= 0.1 x encoder and <= 1 s on the 2-core CPU) and peak memory (process RSS on CPU;
  ``torch.cuda.max_memory_allocated`` per phase on cuda).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _peak_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _setup(size: str) -> tuple[Path, Path]:
    """Temp nnU-Net env, one synthetic case, random released-format weights imported; (image file, model folder)."""
    root = Path(tempfile.mkdtemp(prefix="seganypet_bench_sam_"))
    for name in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"):
        (root / name).mkdir()
        os.environ[name] = str(root / name)
    os.environ.setdefault("nnUNet_def_n_proc", "1")
    from seganypet_nnunet.model.sam_med3d import SamMed3DNet
    from seganypet_nnunet.run.import_checkpoint import import_checkpoint
    from seganypet_nnunet.synthetic import SyntheticConfig
    from seganypet_nnunet.synthetic.dataset import make_dataset

    raw = make_dataset(971, "BenchSAM", 1, 1, SyntheticConfig(size=size), raw_root=root / "nnUNet_raw")
    torch.manual_seed(0)
    released = root / "random_released.pth"
    torch.save({"model_state_dict": SamMed3DNet().state_dict()}, released)
    folder = import_checkpoint(released, 971)
    return sorted((raw / "imagesTs").iterdir())[0], folder


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    p.add_argument("--size", default="whole_body", choices=("whole_body", "small"))
    p.add_argument("--repeats", type=int, default=3, help="encoder passes (median)")
    p.add_argument("--clicks", type=int, default=5, help="correction clicks (median)")
    a = p.parse_args()
    device = torch.device(a.device)
    from seganypet_nnunet.inference.session import SegAnyPETSession

    image, folder = _setup(a.size)
    session = SegAnyPETSession.from_model_folder(folder, folds=("all",), device=device, follow=False)
    t0 = time.perf_counter()
    session.set_image(str(image))
    t_pre = time.perf_counter() - t0
    net = session.networks[0]
    shape = np.array(session.array_shape)  # (z, y, x)
    centre = shape // 2
    crop = torch.rand(1, 1, 128, 128, 128, device=device) * 5
    enc = []
    with torch.inference_mode():
        net.encode(crop)  # warm-up
        _sync(device)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        for _ in range(a.repeats):
            t0 = time.perf_counter()
            net.encode(crop)
            _sync(device)
            enc.append(time.perf_counter() - t0)
    peak_enc = _peak_mb(device)
    session.new_target("bench")
    session.add_point(centre[::-1].astype(float), space="voxel")  # first click: encodes + caches the crop
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    rng = np.random.default_rng(0)
    clicks = []
    crops_before = len(session._cache)
    for _ in range(a.clicks):
        zyx = centre + rng.integers(-3, 4, 3)  # stays inside the first crop: decoder only, no new encoder pass
        t0 = time.perf_counter()
        session.add_point(zyx[::-1].astype(float), positive=bool(rng.random() < 0.5), space="voxel")
        _sync(device)
        clicks.append(time.perf_counter() - t0)
    peak_click = _peak_mb(device)
    if len(session._cache) != crops_before:
        raise RuntimeError("a bench click left the cached crop (it re-ran the encoder); the click timing is invalid")
    e, c = statistics.median(enc), statistics.median(clicks)
    where = torch.cuda.get_device_name() if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"SamMed3DNet (vit_b_ori, random weights) on {where}; torch {torch.__version__}; python {sys.version[:6]}")
    print(f"case: synthetic {a.size}, original (z, y, x) {tuple(int(s) for s in shape)}, preprocessing {t_pre:.1f} s")
    mem = "peak GPU MiB" if device.type == "cuda" else "peak RSS MiB"
    print(f"| measure | median s | {mem} |")
    print("|---|---|---|")
    print(f"| image encoder, one 128^3 crop (n={a.repeats}) | {e:.3f} | {peak_enc:.0f} |")
    row = f"correction click, cached embedding, mapped to original grid (n={a.clicks})"
    print(f"| {row} | {c:.3f} | {peak_click:.0f} |")
    print(f"| ratio click / encoder | {c / e:.3f} | |")


if __name__ == "__main__":
    main()
