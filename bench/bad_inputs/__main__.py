"""Runs bad inputs through every console script of setup.py and the SegAnyPETSession API (real subprocesses, tiny
synthetic data) and classifies each.

Outcomes: ``clear`` (exit != 0, one line ``<cmd>: error: ...`` naming the expected file/field, no traceback, nothing
written, changed or left behind, in TMPDIR either), ``unclear`` (as clear, but the line does not name the file/field),
``traceback``, ``exit0`` (a silent acceptance of a bad input), ``partial`` (exit != 0 but files were written, changed
or left behind), ``code_ran`` (a malicious checkpoint's pickle ran). Full disks and read-only outputs are real tmpfs
mounts in the command's own mount namespace (``unshare -m``; needs root or user namespaces). Usage::

    python bench/bad_inputs [-o results.json] [-k substring,...]

Prints one line per input, then the counts per command and class.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from cases_challenge import challenge_cases  # noqa: E402
from cases_data import _dicom_cases, _generic_cases, _synthetic_cases  # noqa: E402
from cases_inference import _evaluate_cases, _predict_cases  # noqa: E402
from cases_issue24 import issue24_cases  # noqa: E402
from cases_pipeline import _plan_cases, _train_cases  # noqa: E402
from common import build_workspace  # noqa: E402
from runner import counts_table, run_case  # noqa: E402


def all_cases() -> list:
    return (_synthetic_cases() + _generic_cases() + _dicom_cases() + _plan_cases() + _train_cases()
            + _predict_cases() + _evaluate_cases() + challenge_cases() + issue24_cases())  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-o", default=None, help="write the per-input results as JSON here")
    p.add_argument("-k", default=None, help="only inputs whose 'command/name' contains one of these (comma-separated)")
    p.add_argument("--keep", action="store_true", help="keep the workspace")
    a = p.parse_args()
    root = Path(tempfile.mkdtemp(prefix="seganypet_bad_inputs_"))
    try:
        base_env = build_workspace(root)
        keys = a.k.split(",") if a.k else None
        cases = [c for c in all_cases() if keys is None or any(k in f"{c.command}/{c.name}" for k in keys)]
        results = []
        for case in cases:
            r = run_case(case, base_env)
            results.append(r)
            print(f"{r['outcome']:9s} {r['command']:30s} {r['input']:28s} {r['last_line'][:110]}", flush=True)
        print(f"\n{len(results)} inputs\n{counts_table(results)}")
        if a.o:
            totals = Counter(r["outcome"] for r in results)
            Path(a.o).write_text(json.dumps({"totals": dict(totals), "results": results}, indent=1))
    finally:
        if not a.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
