"""Interactive latency on a whole-body synthetic case: set_image, first prediction, cached correction clicks, and a
full network re-run per click (the no-cache baseline). Prints absolute times and RATIOS from one run.

    python bench/bench_interactive_latency.py [--model_folder MODEL] [--image CASE_0000.nii.gz] [--clicks 5]

Without --model_folder it builds an UNTRAINED model folder (SegAnyPETPlannerSmall plans on synthetic whole-body data);
latency does not depend on the weights. Targets: correction click <= 0.1x full re-run and <= 100 ms.
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def _ms(t0: float) -> float:
    return (time.perf_counter() - t0) * 1e3


def main() -> None:
    import torch

    from seganypet_nnunet.inference.session import SegAnyPETSession

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model_folder", default=None)
    p.add_argument("--image", default=None)
    p.add_argument("--planner", default="SegAnyPETPlannerSmall")
    p.add_argument("--clicks", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    if a.model_folder is None:
        from _inference_model import untrained_whole_body_model

        raw, model = untrained_whole_body_model(997, a.planner)
        image = str(next((raw / "imagesTs").glob("*_0000.nii.gz")))
        print(f"model: UNTRAINED {a.planner} plans on synthetic whole-body data ({model})")
    else:
        model, image = a.model_folder, a.image
    s = SegAnyPETSession.from_model_folder(model, follow=False)
    t0 = time.perf_counter()
    s.set_image(image)
    t_set = _ms(t0)
    print(f"image (z,y,x) {s.array_shape} -> preprocessed {s.geometry.preprocessed_shape}, patch {s.patch}")
    centre = np.array(s.image_size_ijk) / 2
    t0 = time.perf_counter()
    s.add_point(tuple(centre), space="voxel")
    t_first = _ms(t0)
    rng = np.random.default_rng(0)
    clicks, full = [], []
    for _ in range(a.clicks):
        c = tuple(centre + rng.uniform(-2, 2, 3))
        t0 = time.perf_counter()
        s.add_point(c, positive=bool(rng.integers(2)), space="voxel")
        clicks.append(_ms(t0))
        s.clear_cache()  # baseline: the same click with the full network re-run (encode + decode)
        s.undo()
        t0 = time.perf_counter()
        s.add_point(c, space="voxel")
        full.append(_ms(t0))
    med_c, med_f = float(np.median(clicks)), float(np.median(full))
    print(f"set_image {t_set:.0f} ms | first prediction (encode+decode) {t_first:.0f} ms")
    print(f"correction click (cached embedding) median {med_c:.1f} ms | full re-run per click median {med_f:.1f} ms")
    print(f"RATIO correction / full re-run = {med_c / med_f:.3f} (target <= 0.1); click <= 100 ms: {med_c <= 100}")


if __name__ == "__main__":
    main()
