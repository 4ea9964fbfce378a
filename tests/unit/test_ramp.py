"""The backfill's limiter keeps Firestore's 500/50/5 rule."""

from __future__ import annotations

from imagen_cli.ramp import Ramp


def test_the_rate_starts_at_500_and_grows_by_half_every_five_minutes() -> None:
    clock = [0.0]
    ramp = Ramp(clock=lambda: clock[0], sleep=lambda s: None)
    assert [ramp.rate(t) for t in (0, 299, 300, 600, 900)] == [500, 500, 750, 1125, 1687.5]


def test_permits_come_no_faster_than_the_rate() -> None:
    clock = [0.0]

    def sleep(seconds: float) -> None:
        clock[0] += seconds

    ramp = Ramp(clock=lambda: clock[0], sleep=sleep)
    for _ in range(1000):
        ramp.acquire()
    assert 1.99 <= clock[0] <= 2.0  # 1000 permits at 500 a second
    clock[0] = 300.0  # five minutes in: 750 a second
    start = clock[0]
    for _ in range(750):
        ramp.acquire()
    assert 0.99 <= clock[0] - start <= 1.0
