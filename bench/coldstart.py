"""Cold start of each function: process start to its first answered request, what it imports on
the way, and its memory once it has answered (issue 27).

Each target runs under functions-framework as the local stack runs it (emulators/stack.py
`_function`), with a deployment's environment pointed at nothing that does work: Firestore and
Pub/Sub at a gRPC server of this process that answers every call UNIMPLEMENTED (a client fails at
once instead of retrying), Triton at a closed port. Each gets the cheapest request its handler
answers: on_upload an object outside every model prefix (ignored), on_job and on_dead_letter a
malformed job message (bad_message, acknowledged), the API a path it does not serve (404 JSON);
on_reconcile has no such path, so it runs to its first Firestore query, refused (500).

Time is from Popen to the first response, polled, with the CPU time the processes spent to it
(steady where wall time is not, on a busy machine). Memory is VmRSS once the request is answered,
in one process (gunicorn's worker shares its master's pages, so its own VmRSS leaves out what
the master imported and the two cannot simply be added). The imports are three more runs under
PYTHONPROFILEIMPORTTIME, the worker's first-request imports included, summed per package (each
module's own time).
`python -m bench.coldstart` (`nox -s coldstart`) measures this tree, saves it as "after" in
docs/coldstart.json and rewrites the table in docs/coldstart.md; with `--before-source DIR` (the
functions/ folder of an older revision) it measures both, their runs alternating.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import http.client
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections import defaultdict
from collections.abc import Iterator, Mapping
from concurrent import futures
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from imagen.jobs.messages import PUBSUB_PUBLISHED, STORAGE_FINALIZED
from tools import docgen

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
RESULTS = DOCS / "coldstart.json"
PAGE = DOCS / "coldstart.md"
HOST = "127.0.0.1"
HEAVY = ("numpy", "tritonclient", "PIL", "pyvips")  # what a function that runs no model can do without
TOP = 6  # packages listed per target
PROFILES = 3  # runs under PYTHONPROFILEIMPORTTIME, and memory probes, per target (median)


@dataclass(frozen=True)
class Target:
    label: str
    target: str
    signature: str
    method: str
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    env: Mapping[str, str] = field(default_factory=dict)
    expect: int = 200

    @property
    def path(self) -> str:
        return "/" if self.signature == "cloudevent" else "/nothing"


def _event(kind: str, data: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    """A binary-mode CloudEvent, as Eventarc delivers one."""
    headers = {
        "ce-specversion": "1.0",
        "ce-id": "coldstart",
        "ce-type": kind,
        "ce-source": "//bench/coldstart",
        "Content-Type": "application/json",
    }
    return json.dumps(data).encode(), headers


def targets(project: str) -> list[Target]:
    ignored = _event(STORAGE_FINALIZED, {"bucket": project, "name": "elsewhere/cold.jpg", "generation": "1"})
    malformed = _event(PUBSUB_PUBLISHED, {"message": {"data": base64.b64encode(b"no job").decode()}})
    # terraform/modules/functions/main.tf: the workers' own variables, the API's
    worker = {"WORKER_MEMORY_MB": "2048", "WORKER_CONCURRENCY": "4", "MALLOC_MMAP_THRESHOLD_": "1048576"}
    api = {"TRITON_URL": "", "API_AUTH": "platform"}
    return [
        Target("on_upload", "on_upload", "cloudevent", "POST", *ignored),
        *(
            Target(f"on_job {m}", "on_job", "cloudevent", "POST", *malformed, env={**worker, "MODEL_NAME": m})
            for m in ("style_aged", "upscale")
        ),
        Target("on_dead_letter", "on_dead_letter", "cloudevent", "POST", *malformed),
        Target("on_reconcile", "on_reconcile", "cloudevent", "POST", *malformed, expect=500),
        Target("api", "api", "http", "GET", env=api, expect=404),
    ]


@contextlib.contextmanager
def refusing_grpc() -> Iterator[int]:
    """A gRPC server with no services: every call is answered UNIMPLEMENTED, at once."""
    import grpc

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    port = server.add_insecure_port(f"{HOST}:0")
    server.start()
    try:
        yield port
    finally:
        server.stop(grace=None)


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def base_env(grpc_port: int, project: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_EMULATOR_HOST")}
    env.update(
        GOOGLE_CLOUD_PROJECT=project,
        BUCKET=project,
        TRITON_URL=f"{HOST}:{free_port()}",  # nothing listens there
        FIRESTORE_EMULATOR_HOST=f"{HOST}:{grpc_port}",
        PUBSUB_EMULATOR_HOST=f"{HOST}:{grpc_port}",
        STORAGE_EMULATOR_HOST=f"http://{HOST}:{grpc_port}",
        PYTHONUNBUFFERED="1",
    )
    for inherited in ("PYTHONPROFILEIMPORTTIME", "MODEL_NAME"):  # set per run, where a run wants it
        env.pop(inherited, None)
    return env


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


# One process, as gunicorn's master and worker together hold it: main imported, the target's
# first request answered in-process (functions-framework's own test client), then VmRSS.
MEMORY_PROBE = """
import json, re, sys
import functions_framework
t = json.loads(sys.argv[1])
app = functions_framework.create_app(t["target"], "main.py", t["signature"])
r = app.test_client().open(t["path"], method=t["method"], data=t["body"].encode(), headers=t["headers"])
status = open("/proc/self/status").read()
kb = int(re.search(r"^VmRSS:\\s+(\\d+) kB", status, re.M).group(1))
print(json.dumps({"status": r.status_code, "rss_mb": kb / 1024}))
"""


def rss_mb(t: Target, source: Path, env: Mapping[str, str]) -> float:
    """VmRSS of one process that imported main and answered the target's request."""
    spec: dict[str, Any] = {"target": t.target, "signature": t.signature, "path": t.path, "method": t.method}
    spec |= {"body": t.body.decode(), "headers": dict(t.headers)}
    done = subprocess.run(
        [sys.executable, "-c", MEMORY_PROBE, json.dumps(spec)],
        cwd=source,
        env={**env, **t.env, "PYTHONPATH": str(source)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{t.label}: memory probe failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.splitlines()[-1])
    if result["status"] != t.expect:
        raise RuntimeError(f"{t.label}: memory probe answered {result['status']}, expected {t.expect}")
    return float(result["rss_mb"])


def cpu_ms(pid: int) -> float:
    """CPU time (user + system) the process has used so far; a busy machine stretches wall time,
    not this."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) * 1000 / os.sysconf("SC_CLK_TCK")


@dataclass
class Run:
    ms: float
    cpu_ms: float  # master and worker
    status: int
    stderr: str


def run_once(
    t: Target, source: Path, env: Mapping[str, str], profile: bool = False, timeout_s: float = 60
) -> Run:
    """Start the target from `source` (a functions/ folder), poll it with its request until
    answered, measure, stop it by its PID."""
    port = free_port()
    argv = [
        str(Path(sys.executable).parent / "functions-framework"),
        *("--target", t.target, "--source", "main.py", "--signature-type", t.signature),
        *("--host", HOST, "--port", str(port)),
    ]
    run_env = {**env, **t.env, "PYTHONPATH": str(source)}  # ahead of the editable install
    if profile:
        run_env["PYTHONPROFILEIMPORTTIME"] = "1"
    with tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(
            argv,
            cwd=source,
            env=run_env,
            stdout=subprocess.DEVNULL,
            stderr=err,
            start_new_session=True,  # its own process group: stopped below by its PID
        )
        try:
            status = _first_answer(proc, port, t, started + timeout_s)
            ms = (time.perf_counter() - started) * 1000
            tree = [proc.pid, *_children(proc.pid)]  # gunicorn: the master and its one worker
            cpu = sum(cpu_ms(pid) for pid in tree)
        finally:
            _stop(proc)
            err.seek(0)
            stderr = err.read().decode(errors="replace")
    if status != t.expect:
        raise RuntimeError(f"{t.label}: answered {status}, expected {t.expect}:\n{stderr[-3000:]}")
    return Run(ms, cpu, status, stderr)


def _first_answer(proc: subprocess.Popen[bytes], port: int, t: Target, deadline: float) -> int:
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"{t.label}: functions-framework exited ({proc.returncode})")
        if time.perf_counter() > deadline:
            raise RuntimeError(f"{t.label}: no answer on port {port}")
        conn = http.client.HTTPConnection(HOST, port, timeout=30)
        try:
            conn.request(t.method, t.path, t.body, dict(t.headers))
            response = conn.getresponse()
            response.read()
            return response.status
        except (ConnectionRefusedError, ConnectionResetError, http.client.RemoteDisconnected):
            time.sleep(0.005)
        finally:
            conn.close()


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    os.kill(proc.pid, signal.SIGINT)  # gunicorn: quick shutdown, its worker with it
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the group this run started (start_new_session)
        proc.wait()


IMPORT_LINE = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)$")


def package(module: str) -> str:
    parts = module.split(".")
    if parts[0] == "google" and len(parts) > 2 and parts[1] == "cloud":
        return ".".join(parts[:3]).removesuffix("_v1")
    if parts[0] == "google" and len(parts) > 1:
        return ".".join(parts[:2])
    if parts[0] == "imagen" and len(parts) > 1:
        return ".".join(parts[:2])
    return parts[0]


def imports(stderrs: list[str]) -> dict[str, Any]:
    """The profiled runs' imports: module count, each package's own time (ms, the runs' median),
    the heavy ones."""
    runs: list[dict[str, float]] = []
    modules: set[str] = set()
    for stderr in stderrs:
        per: dict[str, float] = defaultdict(float)
        for line in stderr.splitlines():
            m = IMPORT_LINE.match(line)
            if m:
                modules.add(m.group(4))
                per[package(m.group(4))] += int(m.group(1)) / 1000
        runs.append(per)
    median = {name: statistics.median(r.get(name, 0.0) for r in runs) for name in set().union(*runs)}
    top = sorted(median.items(), key=lambda kv: -kv[1])
    return {
        "modules": len(modules),
        "import_ms": round(statistics.median(sum(r.values()) for r in runs)),
        "heavy": [h for h in HEAVY if h in modules],
        "top": [[name, round(ms)] for name, ms in top[:TOP]],
    }


def measure(runs: int, sources: Mapping[str, Path], only: set[str] | None) -> dict[str, dict[str, Any]]:
    """Each target's row per source; the sources' runs alternate, so a busy machine slows all."""
    project = "imagen-coldstart"
    out: dict[str, dict[str, Any]] = {key: {} for key in sources}
    with refusing_grpc() as grpc_port:
        env = base_env(grpc_port, project)
        for t in targets(project):
            if only and t.label not in only and t.target not in only:
                continue
            for source in sources.values():
                run_once(t, source, env)  # the page cache and .pyc files warm: every run below alike
            timed: dict[str, list[Run]] = {key: [] for key in sources}
            for _ in range(runs):
                for key, source in sources.items():
                    timed[key].append(run_once(t, source, env))
            for key, source in sources.items():
                row = {
                    "ms": round(statistics.median(r.ms for r in timed[key])),
                    "ms_runs": [round(r.ms) for r in timed[key]],
                    "cpu_ms": round(statistics.median(r.cpu_ms for r in timed[key])),
                    "rss_mb": round(statistics.median(rss_mb(t, source, env) for _ in range(PROFILES)), 1),
                    **imports([run_once(t, source, env, profile=True).stderr for _ in range(PROFILES)]),
                }
                out[key][t.label] = row
                heavy = ", ".join(row["heavy"]) or "-"
                print(
                    f"{key:<6} {t.label:<18} {row['ms']:>6} ms {row['cpu_ms']:>6} CPU ms "
                    f"{row['rss_mb']:>6} MB RSS "
                    f"{row['import_ms']:>5} ms in {row['modules']} imports; heavy: {heavy}",
                    flush=True,
                )
    return out


def table(saved: Mapping[str, Any]) -> str:
    """The before → after table and top imports (markdown, lines of at most 110 characters),
    from what docs/coldstart.json holds."""
    before, after = saved.get("before", {}), saved.get("after", {})
    lines = [
        "| function | ms to first answer | CPU ms | MB RSS | modules | numpy, tritonclient, PIL, pyvips |",
        "|---|---|---|---|---|---|",
    ]
    tops = []
    for label in dict.fromkeys([*before, *after]):
        rows = [(k, r[label]) for k, r in (("before", before), ("after", after)) if label in r]

        def both(key: str, rows: list[tuple[str, dict[str, Any]]] = rows) -> str:
            return " → ".join(str(r[key]) for _, r in rows)

        heavy = " → ".join(
            "all" if r["heavy"] == list(HEAVY) else ", ".join(r["heavy"]) or "none" for _, r in rows
        )
        lines.append(
            f"| {label} | {both('ms')} | {both('cpu_ms')} | {both('rss_mb')} | {both('modules')} | {heavy} |"
        )
        # a no-break space keeps each package with its figure when the line is wrapped
        named = "; ".join(f"{k}: " + ", ".join(f"{name}\xa0{ms}" for name, ms in r["top"]) for k, r in rows)
        wrapped = textwrap.fill(f"- **{label}** {named}", 110, subsequent_indent="  ")
        tops.append(wrapped.replace("\xa0", " "))
    return "\n".join([*lines, "", "Top imports, ms of their own modules:", "", *tops]) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="timed starts per function (median)")
    parser.add_argument(
        "--before-source",
        type=Path,
        help="a functions/ folder of the code before (e.g. `git archive REV functions | tar -x`): "
        "measured as before, its runs alternating with this tree's",
    )
    parser.add_argument("--only", default="", help="comma-separated labels or targets")
    parser.add_argument("--dry-run", action="store_true", help="print only; write no docs")
    args = parser.parse_args()
    only = set(filter(None, args.only.split(","))) or None
    sources = {"after": ROOT / "functions"}
    if args.before_source:
        sources = {"before": args.before_source.resolve(), **sources}
    measured = measure(args.runs, sources, only)
    saved: dict[str, Any] = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    for key, rows in measured.items():
        saved[key] = {**saved.get(key, {}), **rows} if only else rows
    saved["measured"] = f"{os.cpu_count()} CPUs, {time.strftime('%Y-%m-%d')}, {args.runs} runs each"
    print()
    print(table(saved))
    if args.dry_run:
        return 0
    RESULTS.write_text(json.dumps(saved, indent=1) + "\n")
    if PAGE.exists():
        PAGE.write_text(docgen.replace(PAGE.read_text(), "coldstart", table(saved)))
    print(f"written: {RESULTS}" + (f", {PAGE}" if PAGE.exists() else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
