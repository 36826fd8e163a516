"""Per-click cost of SegAnyPETNet: cached ``decode`` vs a full ``forward`` and vs ``encode``.

Usage: python bench/bench_click_cost.py [--sizes 128 96] [--configs default small sam_med3d] [--device cpu|cuda]
[--repeats 7]
Prints one row per (patch size, config) with median times and the RATIOS measured in the same run. ``sam_med3d`` is
the released SAM-Med3D / SegAnyPET architecture (``SamMed3DNet``, random weights, 128^3 only, points without a box;
it has no automatic head, so its "forward" is encode + one decode). Network only: the session's crop bookkeeping and
the mapping back to the original image are in ``bench_sam_med3d.py`` (needs nnU-Net).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from typing import Callable

import torch

from seganypet_nnunet.model.network import build_arch_kwargs, build_network_from_arch, plain_unet_arch
from seganypet_nnunet.prompts.types import Prompts


def _median_ms(fn: Callable[[], object], repeats: int, device: torch.device) -> float:
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def _backbone(n_stages: int) -> dict:
    """nnU-Net 3d_fullres-like PlainConvUNet: 32 -> 320 features, isotropic strides (as planned for 1.5-2 mm PET)."""
    feats = [min(32 * 2**i, 320) for i in range(n_stages)]
    return plain_unet_arch(features_per_stage=feats, strides=[[1, 1, 1]] + [[2, 2, 2]] * (n_stages - 1))


def _click(size: int, device: torch.device, with_box: bool = True) -> Prompts:
    """A 3rd-click-like prompt: 2 positive + 1 negative point, a box (``with_box``), and the previous mask logits."""
    c = size / 2
    pts = torch.tensor([[[c, c, c], [c + 5, c - 3, c], [c - 9, c + 2, c + 4]]], device=device)
    box = torch.tensor([[[c - 12, c - 12, c - 12], [c + 12, c + 12, c + 12]]], device=device)
    return Prompts(
        points=pts,
        point_labels=torch.tensor([[1, 1, 0]], device=device),
        boxes=box if with_box else None,
        mask=torch.randn(1, 1, size, size, size, device=device),
    )


def _network(size: int, config: str, n_stages: int, device: torch.device) -> torch.nn.Module:
    if config == "sam_med3d":
        from seganypet_nnunet.model.sam_med3d.network import SamMed3DNet

        if size != 128:
            raise SystemExit(f"sam_med3d takes 128^3 crops only, got --sizes {size}")
        return SamMed3DNet().to(device).eval()
    arch = build_arch_kwargs(_backbone(n_stages), config, ["log1p_suv"])
    return build_network_from_arch(arch, input_channels=1, num_classes=12, deep_supervision=False).to(device).eval()


def bench_one(size: int, config: str, n_stages: int, repeats: int, device: torch.device) -> dict:
    net = _network(size, config, n_stages, device)
    x = torch.rand(1, 1, size, size, size, device=device) * 5
    prompts = _click(size, device, with_box=config != "sam_med3d")
    prompt_only = getattr(net, "prompt_only", False)
    full = (lambda: net.decode(net.encode(x), prompts)) if prompt_only else (lambda: net(x))
    with torch.inference_mode():
        emb = net.encode(x)
        net.decode(emb, prompts)  # warm-up
        full()
        t_decode = _median_ms(lambda: net.decode(emb, prompts), repeats * 3, device)
        t_forward = _median_ms(full, repeats, device)
        t_encode = _median_ms(lambda: net.encode(x), repeats, device)
    n_head = sum(p.numel() for n, p in net.named_parameters() if not n.startswith("image_encoder."))
    return {
        "size": size,
        "config": config,
        "grid": net.prompt_grid_shape((size,) * 3),
        "forward": t_forward,
        "encode": t_encode,
        "decode": t_decode,
        "head_params": n_head,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[128], help="cubic patch edge lengths")
    parser.add_argument("--configs", nargs="+", default=["default", "small"], help="MODEL_CONFIGS names")
    parser.add_argument("--n-stages", type=int, default=6, help="backbone stages (features 32 -> 320)")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs of forward/encode (decode: 3x this)")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="torch threads on CPU (default: cores)")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cpu":
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"device={device} threads={torch.get_num_threads()} torch={torch.__version__} stages={args.n_stages}")
    header = (
        f"{'patch':>6} {'config':>8} {'grid':>12} {'head par':>9} {'forward ms':>11} {'encode ms':>10} "
        f"{'decode ms':>10} {'dec/fwd':>8} {'dec/enc':>8}"
    )
    print(header)
    print("-" * len(header))
    for size in args.sizes:
        for config in args.configs:
            r = bench_one(size, config, args.n_stages, args.repeats, device)
            print(
                f"{r['size']:>6} {r['config']:>8} {str(r['grid']):>12} {r['head_params']:>9} {r['forward']:>11.1f} "
                f"{r['encode']:>10.1f} {r['decode']:>10.1f} {r['decode'] / r['forward']:>8.3f} "
                f"{r['decode'] / r['encode']:>8.3f}"
            )


if __name__ == "__main__":
    main()
