"""Run a command with a nearly full output file system: a size-limited tmpfs mounted in the command's own mount
namespace (``unshare -m``, needs root or user namespaces), else a file-size limit (``RLIMIT_FSIZE``: the kernel then
fails writes past the limit with EFBIG at the write syscall, which our code treats as a full disk).

Nothing here mocks a writer: the command writes through SimpleITK, nnU-Net, blosc2 and torch as in production.
"""

from __future__ import annotations

import os
import resource
import shlex
import shutil
import signal
import subprocess
import sys
from pathlib import Path

TINY = "64k"  # tmpfs size; a hidden filler file then takes every free byte
FILLER = ".filler"
FSIZE_LIMIT = 256  # bytes per file in the RLIMIT_FSIZE fallback: smaller than any image or JSON we write


def _can_mount() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(
        ["unshare", "-m", "sh", "-c", "mount -t tmpfs -o size=4k tmpfs /mnt && umount /mnt"],
        capture_output=True,
    )
    return probe.returncode == 0


CAN_MOUNT = _can_mount()
MODE = "tmpfs" if CAN_MOUNT else "rlimit_fsize"


def run_with_full_disk(argv: list[str], full_folder: Path, env: dict | None = None, timeout: int = 600):
    """Run ``argv`` with ``full_folder`` (created, empty) on a full tmpfs (0 bytes free), or under a file-size limit.

    Returns the CompletedProcess (text output). After a tmpfs run the folder is empty again on the host (the mount
    existed only in the child's namespace), so callers check what the command printed and what is left in
    ``full_folder``'s parent and ``TMPDIR``; under ``RLIMIT_FSIZE`` the files stay and can be inspected directly.
    """
    full_folder.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, **(env or {})}
    if CAN_MOUNT:
        inner = " ".join(shlex.quote(str(a)) for a in argv)
        script = (
            f"mount -t tmpfs -o size={TINY} tmpfs {shlex.quote(str(full_folder))} && "
            f"(cat /dev/zero > {shlex.quote(str(full_folder / FILLER))}) 2>/dev/null; {inner}; rc=$?; "
            f"ls -A {shlex.quote(str(full_folder))} > {shlex.quote(str(full_folder))}.left 2>/dev/null; "
            "find "
            + shlex.quote(str(full_folder))
            + " -type f -size +0 | wc -l >> "
            + shlex.quote(str(full_folder))
            + ".left; exit $rc"
        )
        return subprocess.run(
            ["unshare", "-m", "sh", "-c", script], capture_output=True, text=True, env=env, timeout=timeout
        )

    def limit() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of a kill
        resource.setrlimit(resource.RLIMIT_FSIZE, (FSIZE_LIMIT, FSIZE_LIMIT))

    return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=timeout, preexec_fn=limit)


def left_in_full_folder(full_folder: Path) -> list[str]:
    """Entries the command left in the full folder (tmpfs: as listed inside the namespace before it ended)."""
    record = Path(f"{full_folder}.left")
    if CAN_MOUNT and record.is_file():
        lines = record.read_text().split()
        return [n for n in lines[:-1] if n != FILLER]  # the last line counts non-empty files
    return sorted(p.name for p in full_folder.iterdir()) if full_folder.is_dir() else []


def python_command(code: str) -> list[str]:
    """``python -c code`` with this interpreter."""
    return [sys.executable, "-c", code]
