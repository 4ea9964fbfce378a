"""Sessions: demo (the main job), up (keep the stack running), tests (unit, integration, system),
lint, tf, models, bench, timeplan, quality, soak, fullsize, hostile."""

from __future__ import annotations

import re

import nox

nox.options.sessions = ["lint", "tests", "tf"]
nox.options.reuse_existing_virtualenvs = True
nox.options.default_venv_backend = "venv"

RUNTIME = ["-r", "requirements.txt", "-e", ".", "-e", "./cli"]  # the core, and the `imagen` command

TEST = ["-r", "requirements-test.txt"]
# Line coverage of the core and the CLI by the in-process tiers (unit + integration). The system
# tier runs the same code in other processes, where it is not counted. Measured 91% on
# 2026-11-27; the floor sits a few points under it, so a change that drops tests shows.
COVERAGE_FLOOR = 88
COVERED = ["--cov=imagen", "--cov=imagen_cli", "--cov-report=term-missing:skip-covered"]


def _install(session: nox.Session, *extra: str) -> None:
    session.install("-q", *RUNTIME, *extra)


def _run_stack(session: nox.Session, *args: str) -> None:
    """Run a driver that starts the local stack. On Ctrl-C it gets time to stop every process by
    its PID (nox's default kills it after half a second, which would orphan the emulators)."""
    session.run("python", "-m", *args, interrupt_timeout=60.0, terminate_timeout=30.0)


@nox.session
def models(session: nox.Session) -> None:
    """Build every ONNX model (cached). Pass `-- --upscale-weights x4plus` for Real-ESRGAN x4plus."""
    _install(session)
    session.run("python", "-m", "modelbuild", *session.posargs, env={"PYTHONPATH": "triton"})


@nox.session
def demo(session: nox.Session) -> None:
    """Start the local stack, run every sample through every model, print the jobs, stop."""
    _install(session)
    _run_stack(session, "emulators.demo")


@nox.session
def soak(session: nox.Session) -> None:
    """Burst: 200 uploads at once on the local stack; prints the tally (lost must be 0)."""
    _install(session)
    _run_stack(session, "emulators.soak", *session.posargs)


@nox.session
def bench(session: nox.Session) -> None:
    """Pipeline overhead against Triton alone and in-process, burst, rembg as a peer, and worker
    memory per megapixel before and after streaming (docs/memory.md)."""
    _install(session, "rembg==2.0.69")
    _run_stack(session, "bench.bench", *session.posargs)
    session.run("python", "-m", "bench.memory")


@nox.session
def fullsize(session: nox.Session) -> None:
    """48 MP photos through every model (12 MP through upscale) under production's memory budget."""
    _install(session)
    _run_stack(session, "emulators.fullsize", *session.posargs)


@nox.session
def timeplan(session: nox.Session) -> None:
    """Each model's time plan against its measured job time at 1, 12 and 48 MP (docs/timeplan.md)."""
    _install(session)
    _run_stack(session, "bench.timeplan", *session.posargs)


@nox.session
def quality(session: nox.Session) -> None:
    """Model quality against plain baselines through the real Triton; writes docs/quality.md."""
    _install(session, "scikit-image==0.26.0")
    _run_stack(session, "bench.quality", *session.posargs)


@nox.session
def up(session: nox.Session) -> None:
    """Start the local stack and keep it running (Ctrl-C stops it); prints the client env."""
    _install(session)
    _run_stack(session, "emulators", "run")


@nox.session
def cli(session: nox.Session) -> None:
    """The `imagen` command installed alone (`pip install . ./cli` into a fresh venv of its own)
    and every subcommand run against the local stack; the stack runs from this session's venv."""
    session.install("-q", "-r", "requirements.txt", "-e", ".")  # the stack: no CLI here
    _run_stack(session, "emulators.cli_session")


def _pytest(session: nox.Session, *args: str) -> None:
    _install(session, *TEST)
    session.run("pytest", *args)


@nox.session
def unit(session: nox.Session) -> None:
    """Unit tests: no services, and only what they import (requirements-unit.txt: no Triton
    server, no GCS emulator, no model-build-only packages)."""
    session.install("-q", "-r", "requirements-unit.txt", "-e", ".", "-e", "./cli")
    session.run("pytest", *(session.posargs or ["tests/unit"]))


@nox.session
def integration(session: nox.Session) -> None:
    """The handlers in-process against the real emulators (and the real Triton where inference
    is the point); the fixtures start only the services a test asks for."""
    _pytest(session, *(session.posargs or ["tests/integration"]))


@nox.session
def system(session: nox.Session) -> None:
    """The full multi-process stack: the bridge, kills, restarts, the CLI against workers."""
    _pytest(session, *(session.posargs or ["tests/system"]))


@nox.session
def tests(session: nox.Session) -> None:
    """All three tiers: unit and integration with the coverage floor, then system."""
    if session.posargs:
        _pytest(session, *session.posargs)
        return
    _pytest(session, "tests/unit", "tests/integration", *COVERED, f"--cov-fail-under={COVERAGE_FLOOR}")
    session.run("pytest", "tests/system")


@nox.session
def lint(session: nox.Session) -> None:
    """ruff (format and check) and mypy."""
    session.install("-q", *RUNTIME, *TEST)
    session.install("-q", "import-linter==2.16", "vulture==2.16")
    session.run("ruff", "format", "--check", ".")
    session.run("ruff", "check", ".")
    # The core's layers and the CLI's light install (contracts in pyproject.toml).
    session.run("lint-imports", env={"PYTHONPATH": "functions:cli"})
    # Nothing in the deployed source that the functions never call (tools/deadcode_allowed.py).
    session.run(
        "vulture",
        "functions",
        "tools/deadcode_allowed.py",
        "--min-confidence",
        "60",
        "--exclude",
        "functions/imagen/core/local.py",  # the local stack's ports (CLI); not in the deployed archive
    )
    session.run("mypy", "functions", "cli", "triton", "emulators", "tests", "bench", "tools", "noxfile.py")


@nox.session
def tf(session: nox.Session) -> None:
    """Terraform checked without terraform: every .tf parses, every block against its provider's
    schema (tests/terraform/schema.py), the wiring tests, then checkov."""
    session.install("-q", "-r", "requirements-test.txt", "numpy==1.26.4")
    session.run("pytest", "tests/terraform")
    session.notify("checkov")


@nox.session
def checkov(session: nox.Session) -> None:
    """checkov over terraform/ (its own venv: it pins an old `packaging`)."""
    session.install("-q", "checkov==3.3.30")
    out = session.run(
        "checkov",
        "--directory",
        "terraform",
        "--framework",
        "terraform",
        "--quiet",
        "--compact",
        "--skip-download",
        env={"BC_SKIP_MAPPING": "TRUE"},
        silent=True,
    )
    print(out)
    if re.search(r"Parsing errors: [1-9]", str(out)):  # a file checkov cannot read, it did not check
        session.error("checkov could not parse every .tf file (its python-hcl2 is older than the tests')")


@nox.session
def hostile(session: nox.Session) -> None:
    """Crafted files: what each costs the decoder before and after the limits (docs/hostile.md)."""
    _install(session)
    session.run("python", "-m", "bench.hostile", *session.posargs)


@nox.session
def docs(session: nox.Session) -> None:
    """Rewrite the docs' generated tables: Config's environment variables (docs/configuration.md)
    and the Terraform inputs and outputs (terraform/README.md); tests/unit/test_docs.py checks them."""
    session.install("-q", *TEST)
    session.run("python", "-m", "tools.docgen", *session.posargs)
