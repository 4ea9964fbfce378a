"""One view per instance of whether a service answers: a circuit breaker its jobs share.

Closed, every delivery runs. A job that finds the service down (unreachable, or busy: it
refused work it could not start in time) opens it; while open, deliveries are turned away at
once without claiming their job, and one of them at a time probes the service, at most once
every `probe_every_s`. The first probe that succeeds closes it, and the queue drains at the
service's pace instead of as a herd of timeouts.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from imagen.core import logs
from imagen.core.errors import ServiceDown


class Breaker:
    """A service's health as this instance sees it (thread-safe)."""

    def __init__(
        self,
        service: str,
        probe: Callable[[], bool],
        probe_every_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.service, self.probe, self.probe_every_s, self.clock = service, probe, probe_every_s, clock
        self._lock = threading.Lock()
        self._opened_at: float | None = None
        self._next_probe = 0.0
        self._probing = False
        self.error = ""
        self.probes = 0  # probes sent while open (a bounded rate: the tests count them)

    @property
    def open(self) -> bool:
        """Whether this instance knows the service to be down."""
        return self._opened_at is not None

    def down_s(self) -> float:
        """Seconds since it was found down (0 while closed)."""
        opened = self._opened_at
        return 0.0 if opened is None else self.clock() - opened

    def trip(self, error: str) -> None:
        """A job found the service down: open (once), and wait a whole interval before a probe."""
        with self._lock:
            self.error = error
            if self._opened_at is not None:
                return
            self._opened_at = self.clock()
            self._next_probe = self._opened_at + self.probe_every_s
        logs.service_down(self.service, error, 0.0)

    def admit(self) -> None:
        """Return when a job may run; raise ServiceDown while the service is known to be down."""
        with self._lock:
            if self._opened_at is None:
                return
            if self._probing or self.clock() < self._next_probe:
                raise ServiceDown(self.service, self._waiting())
            self._probing = True
            self._next_probe = self.clock() + self.probe_every_s
            self.probes += 1
        try:
            ok, error = self._probe()
        finally:
            with self._lock:
                self._probing = False
        if not ok:
            self.error = error or self.error
            logs.service_down(self.service, self.error, self.down_s())
            raise ServiceDown(self.service, self._waiting())
        self._close()

    def _probe(self) -> tuple[bool, str]:
        try:
            return bool(self.probe()), "not ready"
        except Exception as exc:  # any failure to answer is "down"
            return False, f"{type(exc).__name__}: {exc}"

    def _close(self) -> None:
        with self._lock:
            opened, self._opened_at = self._opened_at, None
        if opened is not None:
            logs.service_up(self.service, self.clock() - opened)

    def _waiting(self) -> str:
        return f"{self.service} is down ({self.error}); seen down for {self.down_s():.0f} s"
