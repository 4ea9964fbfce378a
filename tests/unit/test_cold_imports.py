"""A function that runs no model imports none of a model's stack (issue 27, docs/coldstart.md):
numpy, tritonclient, Pillow and pyvips cost each cold start hundreds of milliseconds and tens of MB.

The entry module is imported in a fresh process with a deployment's environment (its services
pointed at closed ports: nothing is contacted), then each function's handler as its first call
imports it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("numpy", "tritonclient", "PIL", "pyvips")

PROBE = """
import importlib, json, sys
seen = {}
for module in sys.argv[1:]:
    importlib.import_module(module)
    seen[module] = sorted({m.partition(".")[0] for m in sys.modules})
print(json.dumps(seen))
"""


def heavy_after(*modules: str, **env: str) -> dict[str, list[str]]:
    """Which of HEAVY are imported once each of `modules` is (in order, in one fresh process)."""
    closed = "127.0.0.1:9"  # discard: nothing answers, and nothing here asks
    base = {k: v for k, v in os.environ.items() if not k.endswith("_EMULATOR_HOST")}
    base.update(
        GOOGLE_CLOUD_PROJECT="imagen-cold",
        BUCKET="imagen-cold",
        TRITON_URL=closed,
        FIRESTORE_EMULATOR_HOST=closed,
        PUBSUB_EMULATOR_HOST=closed,
        STORAGE_EMULATOR_HOST=f"http://{closed}",
    )
    base.pop("MODEL_NAME", None)
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *modules],
        cwd=ROOT / "functions",  # as functions-framework loads main.py: its folder on the path
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    packages: dict[str, list[str]] = json.loads(done.stdout.splitlines()[-1])
    return {module: [h for h in HEAVY if h in loaded] for module, loaded in packages.items()}


def test_functions_that_run_no_model_import_none_of_its_stack() -> None:
    seen = heavy_after(
        "main",
        "imagen.handlers.upload",  # on_upload's first call
        "imagen.handlers.dead_letter",  # on_dead_letter's
        "imagen.handlers.reconciler",  # on_reconcile's
        "imagen.handlers.api",  # the API's: the image libraries only once an upload comes
    )
    assert seen["main"] == [], "the entry module imports a model's stack at start"
    for handler in ("upload", "dead_letter", "reconciler"):
        assert seen[f"imagen.handlers.{handler}"] == [], f"imagen.handlers.{handler} imports {seen}"
    assert seen["imagen.handlers.api"] == [], f"imagen.handlers.api imports {seen}"


def test_a_worker_imports_its_stack_at_start() -> None:
    """The probe sees them where they are: a worker (MODEL_NAME) has them before its first job."""
    assert heavy_after("main", MODEL_NAME="style_aged")["main"] == list(HEAVY)
