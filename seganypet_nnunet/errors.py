"""User-facing errors and the wrapper every console script runs in.

A user error (bad file, bad field, bad flag value) raises a ``SeganypetError`` whose message is ONE line naming the
file or field and what is wrong. ``cli_entry`` turns it into ``seganypet_<cmd>: error: <message>`` on stderr and exit
status 1, without a traceback; ``--verbose`` on the command line or ``SEGANYPET_DEBUG=1`` in the environment show the
traceback too. SIGTERM is turned into ``SystemExit`` so ``finally`` blocks (staging folders) still run — in the
command's own process only: a process forked from it (nnU-Net's ``multiprocessing.Pool`` workers) gets the default
action back, so a pool's ``terminate()`` kills its workers (a ``SystemExit`` raised inside a worker can be swallowed,
e.g. in a ``__del__``, and leave the worker waiting forever on a queue lock its parent holds).
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from typing import TypeVar

DEBUG_ENV = "SEGANYPET_DEBUG"
EXIT_USER_ERROR = 1
EXIT_SIGTERM = 143


class SeganypetError(ValueError):
    """A bad input or setting; the message is one line: ``FILE or field: what is wrong``."""


class InputNotFoundError(SeganypetError, FileNotFoundError):
    """A file or folder the user named does not exist (also a FileNotFoundError for API callers)."""


@contextlib.contextmanager
def as_user_error(field: str, *types: type[BaseException]) -> Iterator[None]:
    """Re-raise ``types`` (default ValueError) from a block as a SeganypetError prefixed with ``field``."""
    catch: tuple[type[BaseException], ...] = types or (ValueError,)
    try:
        yield
    except SeganypetError:
        raise
    except catch as err:
        raise SeganypetError(f"{field}: {one_line(err)}") from None


@contextlib.contextmanager
def reraise_as(error: type[SeganypetError]) -> Iterator[None]:
    """Re-raise a SeganypetError from a block as ``error`` (a subclass, e.g. ConversionError), same one-line message."""
    try:
        yield
    except error:
        raise
    except SeganypetError as err:
        raise error(str(err)) from None


def one_line(error: BaseException) -> str:
    """The error's message on one line (newlines folded, at most 500 characters)."""
    text = " ".join(str(error).split()) or type(error).__name__
    return text[:500]


_sigterm_received: list[bool] = []  # set by _on_sigterm; cli_entry then exits 143 whatever wrapped the SystemExit


def _on_sigterm(signum, frame) -> None:
    _sigterm_received.append(True)
    raise SystemExit(EXIT_SIGTERM)


def _default_sigterm_in_child() -> None:
    """After ``os.fork``, in the child: our SIGTERM handler goes back to the default action (module docstring)."""
    if signal.getsignal(signal.SIGTERM) is _on_sigterm:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


#: Exit status of a child process whose parent died (``watch_parent``).
EXIT_PARENT_GONE = 137
_WATCH_INTERVAL_S = 0.5


def watch_parent() -> None:
    """In a child process (multiprocessing worker, forked or spawned): exit as soon as the parent is gone.

    ``kill -9`` of a command cannot run its clean-up, and nnU-Net's pool workers would otherwise live on (reparented to
    init) for as long as their queues keep them waiting. A daemon thread polls ``os.getppid()`` and ends the process
    with ``os._exit`` once it changes. Started for forked children by an at-fork hook and, for spawned children, when
    they import this package (console scripts: the re-imported main script imports the command's module).
    """
    import threading

    parent = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(_WATCH_INTERVAL_S)
            if os.getppid() != parent:
                os._exit(EXIT_PARENT_GONE)

    threading.Thread(target=watch, name="seganypet-parent-watchdog", daemon=True).start()


def _in_child_after_fork() -> None:
    _default_sigterm_in_child()
    watch_parent()


os.register_at_fork(after_in_child=_in_child_after_fork)


def _is_spawned_child() -> bool:
    import multiprocessing

    return multiprocessing.parent_process() is not None


if _is_spawned_child():  # a spawned worker importing us (forked ones are covered by the at-fork hook)
    watch_parent()


F = TypeVar("F", bound=Callable[..., None])


def cli_entry(command: str) -> Callable[[F], F]:
    """Decorator for a console script: our errors become one line ``command: error: ...`` and exit status 1."""

    def wrap(main: F) -> F:
        @functools.wraps(main)
        def entry(*args, **kwargs):
            argv = args[0] if args and isinstance(args[0], list) else kwargs.get("argv") or sys.argv[1:]
            verbose = "--verbose" in argv or os.environ.get(DEBUG_ENV, "") not in ("", "0")
            previous = None
            _sigterm_received.clear()
            try:
                previous = signal.signal(signal.SIGTERM, _on_sigterm)
            except ValueError:  # not the main thread
                pass
            try:
                return main(*args, **kwargs)
            except SeganypetError as error:
                if verbose:
                    traceback.print_exc()
                print(f"{command}: error: {one_line(error)}", file=sys.stderr)
                raise SystemExit(EXIT_USER_ERROR) from None
            except KeyboardInterrupt:
                print(f"{command}: interrupted", file=sys.stderr)
                raise SystemExit(130) from None
            except Exception:
                # SIGTERM's SystemExit raised inside code that wraps whatever it catches (pydoc.locate while nnU-Net
                # imports the network class, a pool's error handler) arrives here as another exception type.
                if not _sigterm_received:
                    raise
                if verbose:
                    traceback.print_exc()
                print(f"{command}: terminated", file=sys.stderr)
                raise SystemExit(EXIT_SIGTERM) from None
            finally:
                if previous is not None:
                    signal.signal(signal.SIGTERM, previous)

        entry.__seganypet_command__ = command  # type: ignore[attr-defined]  # tests/test_console_scripts.py
        return entry  # type: ignore[return-value]

    return wrap
