"""One line naming the machine a figure was measured on (CPU model and cores, memory, torch, GPU if any).

Benchmarks and the demo print it so that a timing never stands without its machine; ``scripts/machine_line.py``
prints it for pasting into ``docs/benchmarks.md``.
"""

import os
import platform


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def _memory_gib() -> float | None:
    try:
        with open("/proc/meminfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) / 2**20
    except (OSError, ValueError, IndexError):
        pass
    return None


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def machine_line() -> str:
    """E.g. ``Intel(R) Xeon(R) Processor, 2 cores, 23 GiB, torch 2.13.0+cpu, no GPU``."""
    import torch

    parts = [_cpu_model(), f"{_cores()} cores"]
    memory = _memory_gib()
    if memory is not None:
        parts.append(f"{memory:.0f} GiB")
    parts.append(f"torch {torch.__version__}")
    if torch.cuda.is_available():
        names = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        parts.append(f"GPU {', '.join(names)} (CUDA {torch.version.cuda})")
    else:
        parts.append("no GPU")
    return ", ".join(parts)
