"""Runs one bad input in a fresh process and classifies the outcome; prints counts per command and class."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

from common import SCRIPTS, Case, bf, ws

#: Outcome classes, best first. ``exit0`` is a silent acceptance, ``partial`` an output left behind.
CLASSES = ("clear", "unclear", "traceback", "exit0", "partial", "code_ran")


def _command_line(case: Case, args: list[str]) -> list[str]:
    if case.code is not None:
        return [sys.executable, "-c", case.code, *args]
    module, fn = SCRIPTS[case.command].split(":")
    code = f"import sys; sys.argv[0] = {case.command!r}; from {module} import {fn} as e; e()"
    return [sys.executable, "-c", code, *args]


def _in_mount(argv: list[str], kind: str, folder: Path) -> list[str]:
    """``argv`` run in its own mount namespace with ``folder`` a full (0 bytes free) or read-only tmpfs; what is left
    in the folder is listed into ``<folder>.left`` before the namespace (and the tmpfs) goes away."""
    q = shlex.quote(str(folder))
    mount = (f"mount -t tmpfs -o size=64k tmpfs {q} && {{ cat /dev/zero > {q}/.filler; }} 2>/dev/null; true"
             if kind == "full" else f"mount -t tmpfs -o ro tmpfs {q}")  # fmt: skip
    inner = " ".join(shlex.quote(a) for a in argv)
    script = f"{mount} && {inner}; rc=$?; ls -A {q} | grep -v '^.filler$' > {q}.left; exit $rc"
    return ["unshare", "-m", "sh", "-c", script]


def run_case(case: Case, base_env: dict, timeout: int = 600) -> dict:
    c = ws.root / "cases" / f"{case.command}__{case.name}"
    c.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, **base_env}
    if case.own_env:
        env.update({"nnUNet_raw": str(c / "raw"), "nnUNet_preprocessed": str(c / "pre")})
        (c / "raw").mkdir(exist_ok=True)
    if case.setup is not None:
        case.setup(c)
    env.update({k: v.format(case=c) for k, v in case.env.items()})
    env = {k: v for k, v in env.items() if v != ""}
    args = [x.replace("{case}", str(c)) for x in case.args(c)]
    argv = _command_line(case, args)
    left_file = None
    if case.mount is not None:
        folder = c / case.mount[1]
        folder.mkdir(parents=True, exist_ok=True)
        argv, left_file = _in_mount(argv, case.mount[0], folder), Path(f"{folder}.left")
    watched = [c, ws.root / "raw", ws.root / "pre", ws.root / "res"]
    tmp_before = set(os.listdir(env.get("TMPDIR", "/tmp")))
    before = bf.snapshot(*watched)
    ws.marker.unlink(missing_ok=True)
    t0 = time.time()
    try:
        proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout)
        rc, stderr = proc.returncode, proc.stderr
    except subprocess.TimeoutExpired:
        rc, stderr = -9, "TIMEOUT"
    seconds = time.time() - t0
    after = bf.snapshot(*watched)
    changed = [p for p, _ in sorted(set(before.items()) ^ set(after.items())) if not p.endswith(".left")]
    if left_file is not None and left_file.is_file():
        changed += [f"{case.mount[1]}/{n}" for n in left_file.read_text().split()]
    changed += [f"TMPDIR/{n}" for n in sorted(set(os.listdir(env.get("TMPDIR", "/tmp"))) - tmp_before)
                if "seganypet" in n or n.startswith(".seganypet")]  # fmt: skip
    last = next((line for line in reversed(stderr.strip().splitlines()) if line.strip()), "")
    if ws.marker.exists():
        outcome = "code_ran"
    elif rc == 0:
        outcome = "exit0"
    elif "Traceback (most recent call last)" in stderr or rc == -9:
        outcome = "traceback"
    elif changed:
        outcome = "partial"
    elif "error:" in last and case.expect in last:
        outcome = "clear"
    else:
        outcome = "unclear"
    return {"command": case.command, "input": case.name, "outcome": outcome, "exit": rc, "last_line": last[:300],
            "changed": changed[:5], "seconds": round(seconds, 1)}  # fmt: skip


def counts_table(results: list[dict]) -> str:
    """Counts per command and outcome class (rows: commands; columns: ``CLASSES``), with a total row."""
    per: dict[str, Counter] = defaultdict(Counter)
    for r in results:
        per[r["command"]][r["outcome"]] += 1
    width = max([len(k) for k in per] + [7])
    head = f"{'command':{width}s} " + " ".join(f"{k:>9s}" for k in CLASSES) + "    total"
    rows = [head, "-" * len(head)]
    for command in sorted(per):
        n = per[command]
        rows.append(f"{command:{width}s} " + " ".join(f"{n[k]:9d}" for k in CLASSES) + f"  {sum(n.values()):7d}")
    total = Counter(r["outcome"] for r in results)
    rows.append(f"{'all':{width}s} " + " ".join(f"{total[k]:9d}" for k in CLASSES) + f"  {len(results):7d}")
    return "\n".join(rows)
