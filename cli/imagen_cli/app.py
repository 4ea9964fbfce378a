"""`imagen`: submit images, follow jobs, retry failures — on the local stack or a real project.

    imagen submit MODEL FILE... [-o format=webp ...] [--wait] [--out DIR]
    imagen status JOB|gs://BUCKET/OBJECT|OBJECT
    imagen jobs [--limit N] [--status S] [--model M] [--watch]
    imagen retry JOB
    imagen backfill MODEL [--prefix P] [--dry-run] [--all]
    imagen console [--port N] [--no-browser]     (pip install ./cli[console])

`--local` (or IMAGEN_LOCAL=1) talks to the stack of `nox -s up` (IMAGEN_PORT_BASE, default 18000);
otherwise the google-cloud clients use your credentials, --project and --bucket.
"""

from __future__ import annotations

import argparse
import os
import socket
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from imagen.cloud.clients import Cloud
from imagen.core.local import DEFAULT_PORT_BASE, LOCAL_BUCKET, LOCAL_PROJECT, LocalPorts
from imagen.core.models import MODELS
from imagen.core.names import Resources, gs_uri, object_name
from imagen.jobs.messages import job_id
from imagen.jobs.model import JobStatus

from . import render, watch
from .backfill import Report, Scope, backfill
from .files import OutsideOut, confined


class CliError(Exception):
    """A problem the user can fix; printed without a traceback."""


@dataclass(frozen=True)
class Target:
    names: Resources
    bucket: str
    local: bool


def resolve(args: argparse.Namespace, env: Mapping[str, str]) -> tuple[Target, dict[str, str]]:
    """Where the commands go, and the environment the google-cloud clients need for it."""
    local = args.local or env.get("IMAGEN_LOCAL") == "1"
    client_env: dict[str, str] = {}
    if local:
        client_env = LocalPorts(int(env.get("IMAGEN_PORT_BASE", DEFAULT_PORT_BASE))).emulator_env()
    project = args.project or env.get("GOOGLE_CLOUD_PROJECT") or (LOCAL_PROJECT if local else "")
    bucket = args.bucket or env.get("IMAGEN_BUCKET") or (LOCAL_BUCKET if local else "")
    if not project:
        raise CliError("no project: pass --project or set GOOGLE_CLOUD_PROJECT (or use --local)")
    if not bucket and args.command in ("submit", "backfill", "console"):
        raise CliError("no bucket: pass --bucket or set IMAGEN_BUCKET (or use --local)")
    merged = {**env, **client_env}
    for key in ("FIRESTORE_EMULATOR_HOST", "PUBSUB_EMULATOR_HOST"):
        address = merged.get(key)
        if address and not _answers(address):
            raise CliError(
                f"the local stack is not running: nothing answers at {address} ({key}).\n"
                "Start it with: python3 -m nox -s up"
            )
    return Target(Resources.from_env(env, project), bucket, local), client_env


def _answers(address: str) -> bool:
    host, _, port = address.rpartition(":")
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex((host or "127.0.0.1", int(port))) == 0


class Backend:
    """The core's job store and publisher, and the bucket, for one target."""

    def __init__(self, target: Target) -> None:
        from google.auth.exceptions import DefaultCredentialsError

        self.t = target
        try:
            cloud = Cloud.connect(target.names)
            self.objects, self.jobs, self.queries = cloud.storage, cloud.jobs, cloud.queries
            self.publisher, self.gcs = cloud.publisher, cloud.storage.client
        except DefaultCredentialsError as exc:
            raise CliError(
                "no Google Cloud credentials: run `gcloud auth application-default login`, or use --local"
            ) from exc

    def bucket(self) -> Any:
        from google.api_core import exceptions as gexc

        try:
            return self.gcs.get_bucket(self.t.bucket)
        except gexc.NotFound as exc:
            raise CliError(
                f"bucket gs://{self.t.bucket} does not exist (project {self.t.names.project}); "
                "check --bucket or IMAGEN_BUCKET"
            ) from exc


# ---- Commands -------------------------------------------------------------------------------
def cmd_submit(b: Backend, args: argparse.Namespace) -> int:
    if args.model not in MODELS:
        raise CliError(f"unknown model {args.model!r}; one of: {', '.join(MODELS)}")
    files = [Path(f) for f in args.files]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise CliError(f"no such file: {', '.join(missing)}")
    metadata = _options(args.model, args.option)
    bucket = b.bucket()
    submitted: list[tuple[str, str]] = []
    for f in files:
        name = f"{args.model}/{args.prefix.strip('/') + '/' if args.prefix else ''}{f.name}"
        blob = bucket.blob(name)
        blob.metadata = metadata or None
        blob.upload_from_filename(str(f))
        jid = job_id(bucket.name, name, str(blob.generation))
        submitted.append((name, jid))
        render.say(f"submitted {render.safe(gs_uri(bucket.name, name))}  job {jid}")
    if not args.wait:
        return 0
    with render.JobProgress(submitted) as progress:
        ids = [jid for _, jid in submitted]
        docs = watch.wait(b.jobs, ids, args.timeout, every_s=0.5, on_poll=progress.update)
    out = Path(args.out)
    failed = 0
    for name, jid in submitted:
        job = docs.get(jid, {})
        if job.get("status") == JobStatus.DONE:
            result = object_name(job["result_uri"])
            try:
                dest = confined(out, result.split("/", 1)[-1])
            except OutsideOut as exc:
                failed += 1
                render.say(f"refused {render.safe(name)}: {render.safe(str(exc))}")
                continue
            dest.parent.mkdir(parents=True, exist_ok=True)
            bucket.blob(result).download_to_filename(str(dest))
            render.say(f"done    {render.safe(name)} → {dest}  ({render.seconds(job)})")
        else:
            failed += 1
            reason = job.get("reason") or "did not finish in time"
            render.say(f"{job.get('status', 'unknown'):7} {render.safe(name)}: {render.safe(reason)}")
    return 1 if failed else 0


def _options(model: str, pairs: list[str]) -> dict[str, str]:
    """-o KEY=VALUE pairs as the object's imagen-* metadata, checked here as on_upload will."""
    from imagen.core import options

    meta: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise CliError(f"an option is KEY=VALUE (e.g. format=webp); got {pair!r}")
        meta[key.strip().lower()] = value.strip()
    meta = options.from_fields(meta)
    try:
        options.parse(model, meta)
    except options.OptionError as exc:
        raise CliError(str(exc)) from exc
    return meta


def find_job(b: Backend, ref: str) -> dict[str, Any]:
    job = b.jobs.document(ref) if "/" not in ref else None
    if job:
        return job
    bucket_name, name = b.t.bucket, ref
    if ref.startswith("gs://"):
        bucket_name, _, name = ref[5:].partition("/")
    generation = b.objects.generation(bucket_name, name) if bucket_name else None
    if generation is not None:
        job = b.jobs.document(job_id(bucket_name, name, str(generation)))
        if job:
            return job
        raise CliError(
            f"{render.safe(gs_uri(bucket_name, name))} exists but has no job (not under a model prefix?)"
        )
    raise CliError(f"no job or object {render.safe(ref)!r}")


def cmd_status(b: Backend, args: argparse.Namespace) -> int:
    render.describe(find_job(b, args.ref))
    return 0


def cmd_jobs(b: Backend, args: argparse.Namespace) -> int:
    status = JobStatus(args.status) if args.status else None
    while True:
        rows = b.queries.recent(args.limit, status, args.model)
        render.job_table(rows, clear=args.watch)
        if not args.watch:
            return 0
        time.sleep(2)


def retry_job(b: Backend, ref: str) -> str:
    """Queue a failed job again and publish its message; its id (`imagen retry`, the console)."""
    job = find_job(b, ref)
    try:
        msg = b.jobs.retry(job["job_id"])
    except ValueError as exc:
        raise CliError(str(exc)) from exc
    try:
        b.publisher.job(msg)
    except Exception as exc:  # e.g. no permission to publish: the job waits for the reconciler
        raise CliError(
            f"job {msg.job_id} is queued again, but its message could not be published "
            f"({type(exc).__name__}: {exc}); the reconciler will publish it"
        ) from exc
    b.jobs.published(msg.job_id)
    return msg.job_id


def cmd_retry(b: Backend, args: argparse.Namespace) -> int:
    render.say(f"job {retry_job(b, args.ref)} queued again")
    return 0


def cmd_backfill(b: Backend, args: argparse.Namespace) -> int:
    """Jobs for the objects already under a model prefix (and, with --all, run every one again)."""
    if args.model not in MODELS:
        raise CliError(f"unknown model {args.model!r}; one of: {', '.join(MODELS)}")
    bucket = b.bucket()

    def progress(r: Report) -> None:
        render.say(f"  … {r.seen} objects seen, {r.created} jobs created, {r.rerun} run again")

    scope = Scope(b.t.names, bucket.name, b.objects, b)
    report = backfill(scope, args.model, args.prefix, args.dry_run, args.all, progress)
    verb = "would create" if args.dry_run else "created"
    if args.dry_run:
        for name in report.names:
            render.say(f"  {render.safe(name)}")
    render.say(
        f"backfill {args.model}: {report.seen} objects under gs://{bucket.name}/{args.model}/{args.prefix}, "
        f"{verb} {report.created} jobs"
        + (f", {'would run' if args.dry_run else 'ran'} {report.rerun} again" if args.all else "")
        + (f", {report.processed} already processed" if report.processed else "")
    )
    return 0


CONSOLE_MISSING = (
    "the console needs its extra: pip install './cli[console]' (from a checkout) "
    "or pip install 'imagen-cli[console]'"
)


def cmd_console(b: Backend, args: argparse.Namespace) -> int:
    """A web page on 127.0.0.1 over the same jobs and bucket (imagen_cli.console)."""
    from .console import serve

    return serve.run(b, serve.settings(args.port, not args.no_browser, b.t.local, os.environ))


def console_installed() -> bool:
    """Whether the [console] extra is there (the plain CLI stays without it)."""
    try:
        from .console import serve  # noqa: F401
    except ImportError:
        return False
    return True


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
    s.add_argument(
        "-o", "--option", action="append", default=[], help="an option, e.g. -o format=webp -o quality=80"
    )
    s.add_argument("--wait", action="store_true", help="follow the jobs and download the results")
    s.add_argument("--out", default="imagen-results", help="where --wait saves results")
    s.add_argument("--timeout", type=float, default=900)
    st = sub.add_parser("status", help="one job, by id or by object")
    st.add_argument("ref")
    j = sub.add_parser("jobs", help="recent jobs")
    j.add_argument("--limit", type=int, default=20)
    j.add_argument("--status", choices=[str(s) for s in JobStatus])
    j.add_argument("--model", choices=list(MODELS))
    j.add_argument("--watch", action="store_true")
    r = sub.add_parser("retry", help="queue a failed job again")
    r.add_argument("ref")
    bf = sub.add_parser("backfill", help="create the jobs of objects already under a model prefix")
    bf.add_argument("model", help=", ".join(MODELS))
    bf.add_argument("--prefix", default="", help="only objects under MODEL/PREFIX")
    bf.add_argument("--dry-run", action="store_true", help="list what would be done; change nothing")
    bf.add_argument("--all", action="store_true", help="also run finished jobs again (after a model upgrade)")
    c = sub.add_parser("console", help="a web page on 127.0.0.1: jobs, results, submit, overview")
    c.add_argument("--port", type=int, default=8765, help="where it listens (the next free one if taken)")
    c.add_argument("--no-browser", action="store_true", help="print the URL, do not open a browser")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    commands = {
        "submit": cmd_submit,
        "status": cmd_status,
        "jobs": cmd_jobs,
        "retry": cmd_retry,
        "backfill": cmd_backfill,
        "console": cmd_console,
    }
    if args.command == "console" and not console_installed():
        render.error(f"imagen: {CONSOLE_MISSING}")
        return 2
    try:
        target, client_env = resolve(args, os.environ)
        os.environ.update(client_env)  # the google-cloud clients read the emulator hosts from here
        return commands[args.command](Backend(target), args)
    except CliError as exc:
        render.error(f"imagen: {exc}")
        return 2
    except KeyboardInterrupt:
        return 130
