"""The documentation says only what exists: README.md and docs/*.md.

- Every command in a ``bash`` code block that names one of our console scripts: the installed script parses ``-h``
  (exit 0) and every flag the command uses appears in that ``-h`` output. Console scripts come from setup.py's
  ``CONSOLE_SCRIPTS``; a ``seganypet_*`` command not listed there is skipped with the reason.
- Every relative link resolves to a file, and an ``#anchor`` into a markdown page names one of its headings.
"""

from __future__ import annotations

import ast
import functools
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SEPARATORS = {";", "&", "&&", "|", "||", "(", ")", "<", ">", ">>", "<(", "$("}
NOT_SCRIPTS = {"seganypet_nnunet"}  # the package, e.g. in `pip show seganypet_nnunet`


def console_scripts() -> dict[str, str]:
    """``{script name: "module:function"}`` from setup.py's CONSOLE_SCRIPTS (read with ast; setup() is not run)."""
    tree = ast.parse((ROOT / "setup.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "CONSOLE_SCRIPTS" for t in node.targets):
            entries = ast.literal_eval(node.value)
            return dict((part.strip() for part in entry.split("=", 1)) for entry in entries)
    raise AssertionError("setup.py has no CONSOLE_SCRIPTS list")


def bash_blocks(page: Path) -> list[tuple[int, str]]:
    """``(line number, logical line)`` of every line inside a ```bash / ```sh / ```shell block."""
    lines, inside, found, pending, start = page.read_text(encoding="utf-8").splitlines(), False, [], "", 0
    for number, line in enumerate(lines, start=1):
        fence = line.strip().startswith("```")
        if fence and not inside:
            inside = line.strip()[3:].strip() in ("bash", "sh", "shell", "console")
            continue
        if fence:
            inside = False
            continue
        if not inside:
            continue
        if not pending:
            start = number
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        found.append((start, pending + line))
        pending = ""
    return found


def simple_commands(line: str) -> list[list[str]]:
    """The words of each simple command on a shell line (comments dropped, split at ; & | ( ) and redirections)."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    lexer.commenters = "#"
    try:
        words = list(lexer)
    except ValueError:  # an unbalanced quote in an illustrative line: no command to check
        return []
    commands, current = [], []
    for word in words:
        if word in SEPARATORS or set(word) <= set(";&|()<>"):
            commands.append(current)
            current = []
        else:
            current.append(word)
    commands.append(current)
    return [c for c in commands if c]


def documented_commands() -> list[tuple[str, str, list[str]]]:
    """``(where, script, words after the script)`` for every command in a bash block that names ``seganypet_*``."""
    found = []
    for page in PAGES:
        for number, line in bash_blocks(page):
            for words in simple_commands(line):
                for index, word in enumerate(words):
                    if re.fullmatch(r"seganypet_[a-z0-9_]+", word) and word not in NOT_SCRIPTS:
                        found.append((f"{page.relative_to(ROOT)}:{number}", word, words[index + 1 :]))
                        break
    return found


def flags(words: list[str]) -> list[str]:
    """The flags among a command's words (``-x`` / ``--xy``; ``--xy=1`` gives ``--xy``; negative numbers are not)."""
    return [w.split("=", 1)[0] for w in words if re.match(r"-{1,2}[A-Za-z_]", w)]


@functools.lru_cache(maxsize=None)
def help_text(script: str) -> str:
    """The installed script's ``-h`` output; fails when it is not installed or ``-h`` does not exit 0."""
    path = shutil.which(script, path=str(Path(sys.executable).parent)) or shutil.which(script)
    assert path, f"console script {script} is in setup.py but not installed: run `pip install --no-deps -e .`"
    result = subprocess.run([path, "-h"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"`{script} -h` exited {result.returncode}: {result.stderr[-2000:]}"
    return result.stdout


COMMANDS = documented_commands()


def test_readme_fits_one_screenful_of_topics() -> None:
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 150, f"README.md has {len(lines)} lines; move detail to a docs/ page (limit 150)"


def test_the_docs_name_commands() -> None:
    assert len(COMMANDS) >= 20, "the bash blocks of README.md and docs/*.md should name our commands"


@pytest.mark.parametrize(("where", "script", "words"), COMMANDS, ids=[f"{w} {s}" for w, s, _ in COMMANDS])
def test_documented_command_parses(where: str, script: str, words: list[str]) -> None:
    scripts = console_scripts()
    if script not in scripts:
        pytest.skip(f"{script} is not in setup.py's CONSOLE_SCRIPTS in this checkout (documented ahead of its merge)")
    text = help_text(script)
    unknown = [f for f in flags(words) if not re.search(rf"(?<![\w-]){re.escape(f)}(?![\w-])", text)]
    assert not unknown, f"{where}: `{script}` has no flag {', '.join(unknown)} (see `{script} -h`)"


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped except - and _, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.S)
    return {slug(m.group(1)) for m in re.finditer(r"^#{1,6}\s+(.*)$", text, flags=re.M)}


def links(page: Path) -> list[str]:
    """Relative link targets of a page, outside code blocks and inline code."""
    text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.S)
    text = re.sub(r"`[^`\n]*`", "", text)
    targets = re.findall(r"\]\(([^)\s]+)\)", text)
    return [t for t in targets if not re.match(r"[a-z][a-z0-9+.-]*:", t)]  # http:, https:, mailto: ...


LINKS = [(page, target) for page in PAGES for target in links(page)]


@pytest.mark.parametrize(("page", "target"), LINKS, ids=[f"{p.relative_to(ROOT)} -> {t}" for p, t in LINKS])
def test_relative_link_resolves(page: Path, target: str) -> None:
    path, _, anchor = target.partition("#")
    file = (page.parent / path).resolve() if path else page
    assert file.is_file(), f"{page.relative_to(ROOT)}: link {target} names no file"
    if anchor and file.suffix == ".md":
        assert anchor in anchors(file), f"{page.relative_to(ROOT)}: {file.name} has no heading for #{anchor}"


def test_flag_check_can_fail() -> None:
    """The flag check itself: a flag that no command has is reported, the real ones are not."""
    words = simple_commands("seganypet_predict -i IN -o OUT -d 990 --no_such_flag -f 0 # -comment")[0]
    assert flags(words[1:]) == ["-i", "-o", "-d", "--no_such_flag", "-f"]
    text = help_text("seganypet_predict")
    missing = [f for f in flags(words[1:]) if not re.search(rf"(?<![\w-]){re.escape(f)}(?![\w-])", text)]
    assert missing == ["--no_such_flag"]
