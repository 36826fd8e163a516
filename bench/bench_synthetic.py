"""Time to generate one synthetic whole-body PET case (the generator's budget: < 1 s per small case on 2 CPU cores).

Usage: python bench/bench_synthetic.py [--size small | --preset adult] [--tracer fdg] [--spacing 2.0364 2.0364 3]
[--repeats 3]. Prints the best and mean of ``repeats`` timings after one warm-up case, and the lesions drawn.
"""

from __future__ import annotations

import argparse
import time

from seganypet_nnunet.synthetic import SyntheticConfig, make_case
from seganypet_nnunet.synthetic.config import PRESETS


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", default="small", help="SyntheticConfig size preset. Default: small")
    p.add_argument("--preset", default=None, choices=sorted(PRESETS), help="named preset (overrides --size)")
    p.add_argument("--tracer", default="fdg", choices=("fdg", "psma"))
    p.add_argument("--spacing", type=float, nargs=3, default=None, help="voxel spacing in mm (x y z)")
    p.add_argument("--repeats", type=int, default=3, help="timed cases. Default: 3")
    a = p.parse_args()
    kwargs = dict(PRESETS[a.preset]) if a.preset else {"size": a.size}
    config = SyntheticConfig(**kwargs, tracer=a.tracer, spacing=tuple(a.spacing) if a.spacing else None)
    make_case(0, config)  # warm-up
    times, lesions = [], 0
    for seed in range(a.repeats):
        start = time.perf_counter()
        case = make_case(100 + seed, config)
        times.append(time.perf_counter() - start)
        lesions += len(case.truth["lesions"])
    name = a.preset or a.size
    print(
        f"make_case {name} {a.tracer} grid {config.grid_shape_xyz} at {config.grid_spacing} mm: "
        f"best {min(times):.3f} s, mean {sum(times) / len(times):.3f} s of {a.repeats} ({lesions} lesions; "
        "budget < 1 s for small)"
    )


if __name__ == "__main__":
    main()
