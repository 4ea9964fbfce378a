"""Sessions: demo (the main job), up (keep the stack running), tests (unit, integration, system),
lint, tf, models, bench, timeplan, quality, soak, fullsize, hostile, console (the web console in a
browser), cli, lock, costs, load, coldstart, gpu."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import nox

nox.options.sessions = ["lint", "tests", "tf"]
nox.options.reuse_existing_virtualenvs = True
nox.options.default_venv_backend = "venv"

# The functions' whole dependency tree, hashed (`nox -s lock` writes it from requirements.in).
LOCK = "functions/requirements.txt"
RUNTIME = ["-r", "requirements.txt", "-e", ".", "-e", "./cli"]  # the local stack, the core, `imagen`

TEST = ["-r", "requirements-test.txt"]
# Line coverage of the core and the CLI by the in-process tiers (unit + integration). The system
# tier runs the same code in other processes, where it is not counted, and so does the console's
# browser session (pyproject.toml omits the console). Measured 91% on 2026-11-27; the floor sits a
# few points under it, so a change that drops tests shows.
COVERAGE_FLOOR = 88
COVERED = ["--cov=imagen", "--cov=imagen_cli", "--cov-report=term-missing:skip-covered"]


def _locked(session: nox.Session, *rest: str) -> None:
    """The functions' lock with every hash checked, then `rest` held to the lock's versions.
    pip checks hashes for a whole invocation or none (a hashed constraints file turns it on too),
    so the rest (unhashed, editable) goes second, with the lock's pins as plain constraints: a
    package of the lock that the rest wants at another version fails the install."""
    session.install("-q", "--require-hashes", "-r", LOCK)
    lock = (Path(__file__).parent / LOCK).read_text()
    pins = Path(session.create_tmp()) / "lock-pins.txt"
    pins.write_text("".join(f"{m[1]}=={m[2]}\n" for m in re.finditer(r"^([\w.-]+)==(\S+)", lock, re.M)))
    session.install("-q", "-c", str(pins), *rest)


def _install(session: nox.Session, *extra: str) -> None:
    _locked(session, *RUNTIME, *extra)


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
def costs(session: nox.Session) -> None:
    """What one job costs each service (Firestore, Pub/Sub, storage, CPU), per model and size,
    counted on the local stack (ports 19500+, .stack-costs): docs/costs.json."""
    _install(session)
    _run_stack(session, "bench.costs", *session.posargs)


@nox.session
def load(session: nox.Session) -> None:
    """Offered load in steps past the knee on the local stack (ports 19400+, .stack-load): latency
    p50/p95/p99 and the oldest waiting job per step, worker cost per megapixel (docs/load.md)."""
    _install(session, "matplotlib==3.11.2")
    _run_stack(session, "bench.load", *session.posargs)


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
    _locked(session, "-r", "requirements.txt", "-e", ".")  # the stack: no CLI here
    _run_stack(session, "emulators.cli_session")


@nox.session
def console(session: nox.Session) -> None:
    """`imagen console` driven by a real headless Chromium against the local stack (tests/console):
    Debian's chromium is installed with apt-get when missing; Playwright drives it."""
    if not shutil.which("chromium"):
        apt = {"DEBIAN_FRONTEND": "noninteractive"}
        session.run("apt-get", "update", "-q", external=True, env=apt)
        session.run("apt-get", "install", "-y", "-q", "chromium", external=True, env=apt)
    _install(session, *TEST, "-e", "./cli[console]", "playwright==1.65.2")
    # `-- --screenshots docs` rewrites docs/console_*.png; a path after `--` picks tests.
    paths = [] if any(a.startswith("tests/") for a in session.posargs) else ["tests/console"]
    session.run("pytest", *paths, *session.posargs)
    session.run("python", "-m", "bench.console_scale")  # its reads against 10,000 jobs: figures


def _pytest(session: nox.Session, *args: str) -> None:
    _install(session, *TEST)
    session.run("pytest", *args)


@nox.session
def unit(session: nox.Session) -> None:
    """Unit tests: no services, and only what they import (requirements-unit.txt: no Triton
    server, no GCS emulator, no model-build-only packages)."""
    _locked(session, "-r", "requirements-unit.txt", "-e", ".", "-e", "./cli")
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


@nox.session(python="3.11")
def lock(session: nox.Session) -> None:
    """Rewrite functions/requirements.txt, the hashed lock of functions/requirements.in, for the
    functions' runtime (CPython 3.11 on Linux). Keeps the pins that still fit; `-- --upgrade` (or
    `-- --upgrade-package NAME`) moves them on. tests/unit/test_lock.py checks the two agree."""
    session.install("-q", "pip-tools==7.6.2")
    session.run(
        "pip-compile",
        "--quiet",
        "--generate-hashes",
        "--allow-unsafe",
        "--strip-extras",
        "--no-emit-index-url",
        "--no-emit-find-links",
        "--output-file",
        LOCK,
        "functions/requirements.in",
        *session.posargs,
        env={"CUSTOM_COMPILE_COMMAND": "python3 -m nox -s lock"},
    )


@nox.session
def lint(session: nox.Session) -> None:
    """ruff (format and check) and mypy."""
    _locked(session, *RUNTIME, *TEST)
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
def gpu(session: nox.Session) -> None:
    """Each served graph at batches 1 to 32, fp32 and fp16, on the best backend present (docs/gpu.md);
    with no GPU, onnxruntime's CPU provider, whose figures are labelled CPU figures."""
    _install(session)
    session.run("python", "-m", "bench.gpu", *session.posargs)


@nox.session
def coldstart(session: nox.Session) -> None:
    """Each function's time from process start to its first answer, what it imports on the way
    and its memory (docs/coldstart.md); `-- --before-source DIR` measures an older functions/ too."""
    _install(session)
    session.run("python", "-m", "bench.coldstart", *session.posargs)


@nox.session
def docs(session: nox.Session) -> None:
    """Rewrite the docs' generated tables: Config's environment variables (docs/configuration.md)
    and the Terraform inputs and outputs (terraform/README.md); tests/unit/test_docs.py checks them."""
    session.install("-q", *TEST)
    session.run("python", "-m", "tools.docgen", *session.posargs)
