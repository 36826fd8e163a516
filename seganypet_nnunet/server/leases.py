"""Leases: one ``SegAnyPETSession`` per client, all sharing one copy of the network weights; idle ones expire.

``claim`` answers 503 (``CapacityError``) when ``max_sessions`` leases are held; a token that is unknown, released or
idle for longer than ``idle_timeout`` seconds is gone (``LeaseGone``, HTTP 410) and its session's memory is freed.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Callable

from seganypet_nnunet.server.protocol import LeaseSession

log = logging.getLogger("seganypet_serve")


class CapacityError(RuntimeError):
    """Every session slot is taken (HTTP 503)."""


class LeaseGone(RuntimeError):
    """The lease token is unknown, released or expired (HTTP 410)."""


@dataclass
class Lease:
    token: str
    state: LeaseSession
    last_used: float


class LeaseManager:
    """Thread-safe lease table; ``new_state()`` builds a fresh ``LeaseSession`` (sharing the loaded networks)."""

    def __init__(
        self,
        new_state: Callable[[], LeaseSession],
        max_sessions: int,
        idle_timeout: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_sessions < 1:
            raise ValueError(f"max_sessions: must be at least 1, got {max_sessions}")
        if idle_timeout <= 0:
            raise ValueError(f"idle_timeout: must be positive, got {idle_timeout}")
        self.new_state, self.max_sessions, self.idle_timeout = new_state, max_sessions, float(idle_timeout)
        self.clock = clock  # seconds, monotonic
        self._leases: dict[str, Lease] = {}
        self._lock = threading.Lock()

    def claim(self) -> Lease:
        self.expire()
        with self._lock:
            if len(self._leases) >= self.max_sessions:
                raise CapacityError(f"server at capacity: {self.max_sessions} session(s) in use; retry later")
            lease = Lease(secrets.token_urlsafe(24), self.new_state(), self.clock())
            self._leases[lease.token] = lease
        log.info("claim: %d/%d leases", len(self._leases), self.max_sessions)
        return lease

    def get(self, token: str | None, touch: bool = True) -> Lease:
        """The lease of ``token``; ``touch`` restarts its idle clock (real actions do, heartbeats and probes don't)."""
        self.expire()
        with self._lock:
            lease = self._leases.get(token or "")
            if lease is None:
                raise LeaseGone("lease expired or unknown: claim a new session")
            if touch:
                lease.last_used = self.clock()
            return lease

    def remaining(self, lease: Lease) -> float:
        return max(0.0, self.idle_timeout - (self.clock() - lease.last_used))

    def release(self, token: str | None) -> bool:
        with self._lock:
            lease = self._leases.pop(token or "", None)
        if lease is not None:
            log.info("release: %d/%d leases", len(self._leases), self.max_sessions)
        return lease is not None

    def expire(self) -> int:
        """Drops leases idle for longer than ``idle_timeout`` (their sessions are freed); returns how many."""
        now = self.clock()
        with self._lock:
            gone = [t for t, lease in self._leases.items() if now - lease.last_used > self.idle_timeout]
            for token in gone:
                del self._leases[token]
        if gone:
            log.info("expired %d idle lease(s)", len(gone))
        return len(gone)

    def __len__(self) -> int:
        return len(self._leases)

    def touch(self, lease: Lease) -> None:
        lease.last_used = self.clock()
