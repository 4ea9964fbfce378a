"""The per-instance circuit breaker: one outage noticed once, probed at a bounded rate."""

from __future__ import annotations

import threading

import pytest

from imagen.core.errors import ServiceDown
from imagen.inference.breaker import Breaker


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_closed_admits_without_probing() -> None:
    probes: list[int] = []

    def probe() -> bool:
        probes.append(1)
        return True

    breaker = Breaker("triton", probe, 10, Clock())
    for _ in range(5):
        breaker.admit()
    assert probes == [] and not breaker.open


def test_open_turns_deliveries_away_and_probes_once_per_interval() -> None:
    clock, answers = Clock(), [False, False, True]
    breaker = Breaker("triton", lambda: answers.pop(0), 10, clock)
    breaker.trip("Connection refused")
    for _ in range(50):  # a herd of deliveries within the interval: none probes, none runs
        with pytest.raises(ServiceDown, match="Connection refused"):
            breaker.admit()
    assert breaker.probes == 0
    for step in range(2):  # each interval, one probe; still down
        clock.now += 10
        with pytest.raises(ServiceDown):
            breaker.admit()
        with pytest.raises(ServiceDown):
            breaker.admit()  # the next one waits for the next interval
        assert breaker.probes == step + 1
    clock.now += 10
    breaker.admit()  # the probe succeeds: this delivery runs, and so do the next
    breaker.admit()
    assert not breaker.open and breaker.probes == 3 and answers == []


def test_a_probe_that_raises_counts_as_down() -> None:
    clock = Clock()

    def probe() -> bool:
        raise ConnectionRefusedError("refused")

    breaker = Breaker("triton", probe, 5, clock)
    breaker.trip("first")
    clock.now += 5
    with pytest.raises(ServiceDown, match="ConnectionRefusedError: refused"):
        breaker.admit()
    assert breaker.open and breaker.down_s() == 5


def test_one_probe_at_a_time_across_threads() -> None:
    clock, release, entered = Clock(), threading.Event(), threading.Event()

    def slow_probe() -> bool:
        entered.set()
        release.wait(5)
        return True

    breaker = Breaker("triton", slow_probe, 1, clock)
    breaker.trip("down")
    clock.now += 1
    prober = threading.Thread(target=breaker.admit)
    prober.start()
    assert entered.wait(5)
    with pytest.raises(ServiceDown):  # while the probe is out, others are turned away at once
        breaker.admit()
    release.set()
    prober.join(5)
    breaker.admit()
    assert breaker.probes == 1 and not breaker.open


def test_tripping_again_while_open_keeps_the_first_time() -> None:
    clock = Clock()
    breaker = Breaker("triton", lambda: False, 10, clock)
    breaker.trip("a")
    clock.now += 30
    breaker.trip("b")
    assert breaker.down_s() == 30 and breaker.error == "b"
