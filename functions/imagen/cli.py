"""`imagen`: submit images, follow jobs, retry failures — on the local stack or a real project.

    imagen submit MODEL FILE... [--wait] [--out DIR]
    imagen status JOB|gs://BUCKET/OBJECT|OBJECT
    imagen jobs [--limit N] [--status S] [--model M] [--watch]
    imagen retry JOB

`--local` (or IMAGEN_LOCAL=1) talks to the stack of `nox -s up` (IMAGEN_PORT_BASE, default 18000);
otherwise the google-cloud clients use your credentials, --project and --bucket.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import socket
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .events import JobMessage, job_id
from .models import MODELS

TERMINAL = ("done", "failed")
BAR = 24


class CliError(Exception):
    """A problem the user can fix; printed without a traceback."""


def local_env(port_base: int) -> dict[str, str]:
    """What the local stack's emulators listen on (mirrors emulators/settings.py)."""
    host = "127.0.0.1"
    return {
        "PUBSUB_EMULATOR_HOST": f"{host}:{port_base + 85}",
        "FIRESTORE_EMULATOR_HOST": f"{host}:{port_base + 80}",
        "STORAGE_EMULATOR_HOST": f"http://{host}:{port_base + 43}",
    }


@dataclass
class Target:
    project: str
    bucket: str
    local: bool


def resolve(args: argparse.Namespace) -> Target:
    local = args.local or os.environ.get("IMAGEN_LOCAL") == "1"
    if local:
        os.environ.update(local_env(int(os.environ.get("IMAGEN_PORT_BASE", "18000"))))
    project = args.project or os.environ.get("GOOGLE_CLOUD_PROJECT") or ("imagen-local" if local else "")
    bucket = args.bucket or os.environ.get("IMAGEN_BUCKET") or ("imagen-local" if local else "")
    if not project:
        raise CliError("no project: pass --project or set GOOGLE_CLOUD_PROJECT (or use --local)")
    if not bucket and args.command == "submit":
        raise CliError("no bucket: pass --bucket or set IMAGEN_BUCKET (or use --local)")
    for key in ("FIRESTORE_EMULATOR_HOST", "PUBSUB_EMULATOR_HOST"):
        address = os.environ.get(key)
        if address and not _answers(address):
            raise CliError(
                f"the local stack is not running: nothing answers at {address} ({key}).\n"
                "Start it with: python3 -m nox -s up"
            )
    return Target(project, bucket, local)


def _answers(address: str) -> bool:
    host, _, port = address.rpartition(":")
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex((host or "127.0.0.1", int(port))) == 0


class Backend:
    """The three services the CLI talks to."""

    def __init__(self, target: Target) -> None:
        from google.auth.exceptions import DefaultCredentialsError
        from google.cloud import firestore, pubsub_v1, storage  # type: ignore[attr-defined]

        self.t = target
        try:
            self.gcs = storage.Client(project=target.project)
            self.db = firestore.Client(project=target.project)
            self.publisher = pubsub_v1.PublisherClient()
        except DefaultCredentialsError as exc:
            raise CliError(
                "no Google Cloud credentials: run `gcloud auth application-default login`, or use --local"
            ) from exc
        self.jobs = self.db.collection(os.environ.get("JOBS_COLLECTION", "jobs"))

    def bucket(self) -> Any:
        from google.api_core import exceptions as gexc

        try:
            return self.gcs.get_bucket(self.t.bucket)
        except gexc.NotFound as exc:
            raise CliError(
                f"bucket gs://{self.t.bucket} does not exist (project {self.t.project}); "
                "check --bucket or IMAGEN_BUCKET"
            ) from exc

    def job(self, jid: str) -> dict[str, Any] | None:
        snap = self.jobs.document(jid).get()
        return snap.to_dict() if snap.exists else None


# ---- Rendering ------------------------------------------------------------------------------
def bar(job: dict[str, Any] | None) -> str:
    status = (job or {}).get("status", "waiting")
    fraction = {"done": 1.0, "failed": 1.0}.get(status, float((job or {}).get("progress", 0.0)))
    if status == "queued":
        fraction = 0.0
    filled = int(round(fraction * BAR))
    return f"[{'#' * filled}{'.' * (BAR - filled)}] {fraction * 100:3.0f}% {status}"


def seconds(job: dict[str, Any]) -> str:
    if job.get("finished_at") and job.get("created_at"):
        return f"{(job['finished_at'] - job['created_at']).total_seconds():.1f}s"
    return ""


def describe(job: dict[str, Any]) -> str:
    lines = [f"{k:14} {job[k]}" for k in ("job_id", "model", "status", "source_uri", "attempts") if k in job]
    if job.get("result_uri"):
        lines.append(f"{'result_uri':14} {job['result_uri']}")
    if job.get("reason"):
        lines.append(f"{'reason':14} {job['reason']}")
    if job.get("last_error") and job.get("status") != "done":
        lines.append(f"{'last_error':14} {job['last_error']}")
    if job.get("timings"):
        lines.append(f"{'timings':14} " + ", ".join(f"{k}={v}" for k, v in job["timings"].items()))
    for h in job.get("history", []):
        extra = f" (attempt {h['attempt']})" if h.get("attempt") else ""
        lines.append(f"{'':14} {h['at']:%Y-%m-%d %H:%M:%S} {h['status']}{extra}")
    return "\n".join(lines)


# ---- Commands -------------------------------------------------------------------------------
def cmd_submit(b: Backend, args: argparse.Namespace) -> int:
    if args.model not in MODELS:
        raise CliError(f"unknown model {args.model!r}; one of: {', '.join(MODELS)}")
    files = [Path(f) for f in args.files]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise CliError(f"no such file: {', '.join(missing)}")
    bucket = b.bucket()
    submitted: list[tuple[str, str]] = []
    for f in files:
        name = f"{args.model}/{args.prefix.strip('/') + '/' if args.prefix else ''}{f.name}"
        blob = bucket.blob(name)
        blob.upload_from_filename(str(f))
        jid = job_id(bucket.name, name, str(blob.generation))
        submitted.append((name, jid))
        print(f"submitted gs://{bucket.name}/{name}  job {jid}")
    if not args.wait:
        return 0
    finals = follow(b, submitted, args.timeout)
    out = Path(args.out)
    failed = 0
    for (name, _), job in zip(submitted, finals, strict=True):
        if job.get("status") == "done":
            result = job["result_uri"].split("/", 3)[3]
            dest = out / result.split("/", 1)[1]
            dest.parent.mkdir(parents=True, exist_ok=True)
            bucket.blob(result).download_to_filename(str(dest))
            print(f"done    {name} → {dest}  ({seconds(job)})")
        else:
            failed += 1
            print(f"{job.get('status', 'unknown'):7} {name}: {job.get('reason') or 'did not finish in time'}")
    return 1 if failed else 0


def follow(b: Backend, submitted: Sequence[tuple[str, str]], timeout_s: float) -> list[dict[str, Any]]:
    """Progress bars until every job is done or failed (or the timeout passes)."""
    tty = sys.stdout.isatty()
    deadline = time.monotonic() + timeout_s
    jobs: list[dict[str, Any]] = [{} for _ in submitted]
    shown: list[str] = ["" for _ in submitted]
    first = True
    while True:
        for i, (_, jid) in enumerate(submitted):
            if jobs[i].get("status") not in TERMINAL:
                jobs[i] = b.job(jid) or {}
        lines = [f"{name[-40:]:40} {bar(job)}" for (name, _), job in zip(submitted, jobs, strict=True)]
        if tty:
            if not first:
                sys.stdout.write(f"\x1b[{len(lines)}A")
            sys.stdout.write("".join(f"\x1b[2K{line}\n" for line in lines))
            sys.stdout.flush()
        else:
            for i, line in enumerate(lines):
                status = jobs[i].get("status", "waiting")
                if status != shown[i]:
                    print(line, flush=True)
                    shown[i] = status
        first = False
        if all(j.get("status") in TERMINAL for j in jobs) or time.monotonic() > deadline:
            return jobs
        time.sleep(0.5)


def find_job(b: Backend, ref: str) -> dict[str, Any]:
    job = b.job(ref) if "/" not in ref else None
    if job:
        return job
    bucket_name, name = b.t.bucket, ref
    if ref.startswith("gs://"):
        bucket_name, _, name = ref[5:].partition("/")
    blob = b.gcs.bucket(bucket_name).get_blob(name) if bucket_name else None
    if blob is not None:
        job = b.job(job_id(bucket_name, name, str(blob.generation)))
        if job:
            return job
        raise CliError(f"gs://{bucket_name}/{name} exists but has no job (not under a model prefix?)")
    raise CliError(f"no job or object {ref!r}")


def cmd_status(b: Backend, args: argparse.Namespace) -> int:
    print(describe(find_job(b, args.ref)))
    return 0


def cmd_jobs(b: Backend, args: argparse.Namespace) -> int:
    from google.cloud import firestore
    from google.cloud.firestore_v1.base_query import FieldFilter

    while True:
        query: Any = b.jobs
        if args.status:
            query = query.where(filter=FieldFilter("status", "==", args.status))
        if args.model:
            query = query.where(filter=FieldFilter("model", "==", args.model))
        rows = [
            s.to_dict() or {}
            for s in query.order_by("created_at", direction=firestore.Query.DESCENDING)
            .limit(args.limit)
            .stream()
        ]
        if args.watch and sys.stdout.isatty():
            sys.stdout.write("\x1b[2J\x1b[H")
        print(f"{'created':19} {'job':32} {'model':17} {'status':7} {'secs':>6}  object")
        for r in rows:
            print(
                f"{r['created_at']:%Y-%m-%d %H:%M:%S} {r['job_id']:32} {r['model']:17} {r['status']:7} "
                f"{seconds(r)[:-1] if seconds(r) else '':>6}  {r['object']}"
            )
        if not rows:
            print("no jobs yet")
        if not args.watch:
            return 0
        time.sleep(2)


def cmd_retry(b: Backend, args: argparse.Namespace) -> int:
    from google.cloud import firestore

    job = find_job(b, args.ref)
    if job["status"] != "failed":
        raise CliError(f"job {job['job_id']} is {job['status']}; only failed jobs can be retried")
    now = dt.datetime.now(dt.UTC)
    b.jobs.document(job["job_id"]).update(
        {
            "status": "queued",
            "reason": firestore.DELETE_FIELD,
            "event_published": firestore.DELETE_FIELD,
            "updated_at": now,
            "history": firestore.ArrayUnion([{"status": "queued", "at": now, "retry": True}]),
        }
    )
    msg = JobMessage(job["job_id"], job["model"], job["bucket"], job["object"], job["generation"])
    topic = b.publisher.topic_path(b.t.project, f"{os.environ.get('TOPIC_PREFIX', 'imagen-')}{job['model']}")
    b.publisher.publish(topic, msg.encode(), job_id=msg.job_id, model=msg.model).result(timeout=60)
    print(f"job {job['job_id']} queued again")
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="imagen", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--project", help="Google Cloud project (GOOGLE_CLOUD_PROJECT)")
    p.add_argument("--bucket", help="images bucket (IMAGEN_BUCKET)")
    p.add_argument("--local", action="store_true", help="use the local stack of `nox -s up`")
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("submit", help="upload images under a model prefix")
    s.add_argument("model", help=", ".join(MODELS))
    s.add_argument("files", nargs="+")
    s.add_argument("--prefix", default="", help="folder under the model prefix")
    s.add_argument("--wait", action="store_true", help="follow the jobs and download the results")
    s.add_argument("--out", default="imagen-results", help="where --wait saves results")
    s.add_argument("--timeout", type=float, default=900)
    st = sub.add_parser("status", help="one job, by id or by object")
    st.add_argument("ref")
    j = sub.add_parser("jobs", help="recent jobs")
    j.add_argument("--limit", type=int, default=20)
    j.add_argument("--status", choices=["queued", "running", "done", "failed"])
    j.add_argument("--model", choices=list(MODELS))
    j.add_argument("--watch", action="store_true")
    r = sub.add_parser("retry", help="queue a failed job again")
    r.add_argument("ref")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    commands = {"submit": cmd_submit, "status": cmd_status, "jobs": cmd_jobs, "retry": cmd_retry}
    try:
        backend = Backend(resolve(args))
        return commands[args.command](backend, args)
    except CliError as exc:
        print(f"imagen: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
