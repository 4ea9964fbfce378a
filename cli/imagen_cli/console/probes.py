"""The state of the services the pipeline runs on, as this machine sees them: Firestore, Pub/Sub,
storage, and Triton where its address is known here (the local stack's, or TRITON_URL; a
deployed Triton answers only inside its VPC)."""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

TIMEOUT_S = 5.0


def _check(probe: Callable[[], object]) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        probe()
        out: dict[str, Any] = {"ok": True}
    except Exception as exc:  # any failure is the state to show
        out = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
    out["ms"] = round((time.perf_counter() - started) * 1000, 1)
    return out


def triton_ready(url: str) -> Callable[[], object]:
    """GET /v2/health/ready on Triton's HTTP port (host:port, or a URL)."""
    base = url if "://" in url else f"http://{url}"

    def probe() -> object:
        with urllib.request.urlopen(f"{base.rstrip('/')}/v2/health/ready", timeout=TIMEOUT_S) as resp:
            if resp.status != 200:
                raise RuntimeError(f"Triton answered {resp.status}")
        return True

    return probe


def states(probes: dict[str, Callable[[], object] | None]) -> dict[str, dict[str, Any]]:
    """Each service's probe, run side by side; a service with no probe is `unknown`."""
    known = {name: p for name, p in probes.items() if p is not None}
    with ThreadPoolExecutor(max(1, len(known))) as pool:
        futures = {name: pool.submit(_check, p) for name, p in known.items()}
        out = {name: f.result() for name, f in futures.items()}
    for name, p in probes.items():
        if p is None:
            out[name] = {"ok": None, "error": "not reachable from here (set TRITON_URL to check it)"}
    return {name: out[name] for name in probes}
