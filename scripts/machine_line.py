"""Print the machine line for docs/benchmarks.md: CPU model, cores, memory, torch version, GPU if any.

python scripts/machine_line.py
"""

from seganypet_nnunet.machine import machine_line

if __name__ == "__main__":
    print(machine_line())
