"""Time to generate one synthetic whole-body PET case (the generator's budget: < 1 s per small case on 2 CPU cores).

Usage: python bench/bench_synthetic.py [--size small] [--repeats 3]
Prints the best of ``repeats`` timings after one warm-up case.
"""

from __future__ import annotations

import argparse
import time

from seganypet_nnunet.synthetic import SyntheticConfig, make_case


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", default="small", help="SyntheticConfig size preset. Default: small")
    p.add_argument("--repeats", type=int, default=3, help="timed cases. Default: 3")
    a = p.parse_args()
    config = SyntheticConfig(size=a.size)
    make_case(0, config)  # warm-up
    times = []
    for seed in range(a.repeats):
        start = time.perf_counter()
        make_case(100 + seed, config)
        times.append(time.perf_counter() - start)
    print(f"make_case size={a.size}: best {min(times):.3f} s of {a.repeats} (budget < 1 s for small)")


if __name__ == "__main__":
    main()
