"""Every console script in setup.py runs inside ``errors.cli_entry`` (one-line errors, SIGTERM clean-up), under its
own command name, and its installed script answers ``-h`` with exit status 0."""

from __future__ import annotations

import ast
import importlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SETUP = Path(__file__).resolve().parents[1] / "setup.py"


def console_scripts() -> list[tuple[str, str, str]]:
    """(script name, module, function) of setup.py's CONSOLE_SCRIPTS list, read without running setup.py."""
    tree = ast.parse(SETUP.read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "CONSOLE_SCRIPTS" for t in node.targets):
            entries = ast.literal_eval(node.value)
            break
    else:
        raise AssertionError("setup.py has no CONSOLE_SCRIPTS list")
    out = []
    for entry in entries:
        name, target = (part.strip() for part in entry.split("=", 1))
        module, function = target.split(":")
        out.append((name, module, function))
    return out


SCRIPTS = console_scripts()


def test_setup_lists_every_command():
    assert len(SCRIPTS) >= 15 and len({s[0] for s in SCRIPTS}) == len(SCRIPTS)


@pytest.mark.parametrize(
    "name,module,function",
    SCRIPTS,
)
def test_entry_is_wrapped_in_cli_entry_under_its_own_name(name, module, function):
    entry = getattr(importlib.import_module(module), function)
    assert getattr(entry, "__seganypet_command__", None) == name


@pytest.mark.parametrize("name", [s[0] for s in SCRIPTS])
def test_installed_script_answers_help_with_status_0(name):
    script = shutil.which(name, path=str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""))
    assert script is not None, f"{name} is not installed (pip install -e .)"
    done = subprocess.run([script, "-h"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "usage:" in done.stdout and "Traceback" not in done.stderr
