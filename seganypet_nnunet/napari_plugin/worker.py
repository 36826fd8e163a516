"""Running session work off the GUI thread: napari thread workers, one job at a time, in submission order.

A ``SegAnyPETSession`` is not thread-safe, so every call into it goes through one ``TaskQueue``: a job's ``work`` runs
in a napari ``FunctionWorker`` (Qt thread pool), and its ``done`` / ``failed`` callback runs on the GUI thread before
the next job starts. ``work`` never raises into napari (which would show a traceback): its exception is handed to
``failed`` as a value.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any, Callable


@dataclass
class Job:
    """One unit of work: ``work()`` off the GUI thread, then ``done(result)`` or ``failed(exception)`` on it."""

    work: Callable[[], Any]
    done: Callable[[Any], None]
    failed: Callable[[BaseException], None]
    description: str
    progress: bool = False  # show napari's (indeterminate) progress bar in the activity dock


def _guarded(work: Callable[[], Any]) -> tuple[bool, Any]:
    try:
        return True, work()
    except Exception as err:  # handed to the GUI thread as a value; it decides how to show it
        return False, err


class TaskQueue:
    """Serial job queue over napari thread workers.

    Args:
        on_busy: called on the GUI thread with (busy, description) whenever a job starts or the queue drains.
    """

    def __init__(self, on_busy: Callable[[bool, str], None] | None = None) -> None:
        self._jobs: deque[Job] = deque()
        self._worker = None
        self.on_busy = on_busy or (lambda busy, text: None)

    @property
    def busy(self) -> bool:
        """A job is running or waiting."""
        return self._worker is not None or bool(self._jobs)

    def submit(self, job: Job) -> None:
        """Queue ``job``; it starts now if nothing else runs."""
        self._jobs.append(job)
        if self._worker is None:
            self._next()

    def _next(self) -> None:
        from napari.qt.threading import create_worker

        if not self._jobs:
            self._worker = None
            self.on_busy(False, "")
            return
        job = self._jobs.popleft()
        self.on_busy(True, job.description)
        kwargs = {"_progress": {"desc": job.description}} if job.progress else {}
        worker = create_worker(_guarded, job.work, **kwargs)
        worker.returned.connect(lambda result, job=job: self._finish(job, result))
        self._worker = worker
        worker.start()

    def _finish(self, job: Job, result: tuple[bool, Any]) -> None:
        ok, value = result
        try:
            if ok:
                job.done(value)
            else:
                job.failed(value)
        except Exception as err:  # a GUI-side callback failed: report it, keep the queue alive
            job.failed(err)
        finally:
            self._next()
