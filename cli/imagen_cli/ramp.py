"""Firestore's 500/50/5 rule as a limiter: start at 500 new jobs a second, grow by half every
five minutes. A backfill of a bucket of existing photos creates jobs no faster than this, so a
fresh collection's indexes have time to split instead of answering with contention."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

START_PER_S = 500.0
GROWTH = 1.5
EVERY_S = 300.0


class Ramp:
    """Hands out permits at the ramp's current rate; `acquire` blocks until the next one is due."""

    def __init__(
        self,
        start_per_s: float = START_PER_S,
        growth: float = GROWTH,
        every_s: float = EVERY_S,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.start_per_s, self.growth, self.every_s = start_per_s, growth, every_s
        self.clock, self.sleep = clock, sleep
        self.began = clock()
        self.next_at = self.began
        self.lock = threading.Lock()

    def rate(self, at: float | None = None) -> float:
        """Permits a second at `at` (now by default)."""
        elapsed = (self.clock() if at is None else at) - self.began
        return self.start_per_s * self.growth ** int(elapsed // self.every_s)

    def acquire(self) -> None:
        with self.lock:
            now = self.clock()
            due = max(self.next_at, now)
            self.next_at = due + 1.0 / self.rate(due)
        if due > now:
            self.sleep(due - now)
