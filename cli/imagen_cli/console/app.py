"""The console's web app: its pages (one HTML shell, plain JS and CSS) and the JSON they read.

Every route is behind security.GuardMiddleware. Firestore, storage and libvips calls block, so
they run in Starlette's thread pool; nothing here holds a whole image.
"""

from __future__ import annotations

import mimetypes
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from imagen.core import options
from imagen.core.models import MODELS
from imagen.core.names import split_gs_uri
from imagen.jobs.model import JobStatus

from .. import app as cli
from . import forms, live, logs, overview, previews, probes, submit, views
from .objects import MissingObject, Objects, TooLarge
from .queries import PAGE_MAX, Filter, JobReads
from .security import Guard, GuardMiddleware

STATIC = Path(__file__).parent / "static"
PAGES = ("/", "/jobs", "/jobs/{job_id:str}", "/submit", "/overview")
SIDES = ("source", "result")


@dataclass(frozen=True)
class Console:
    """What the pages talk to, built once by serve.py: the CLI's backend (job store, publisher,
    bucket), the console's reads of the jobs, the objects on disk, and where Triton answers."""

    backend: cli.Backend
    reads: JobReads
    objects: Objects
    workdir: Path
    triton_url: str = ""

    @property
    def bucket(self) -> str:
        return self.backend.t.bucket


class Problem(Exception):
    """An answer other than 200, with a message for the page."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _json(body: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers={"Cache-Control": "no-store"})


def create_app(console: Console, guard: Guard) -> Starlette:
    """The app for one run (its token and port in `guard`)."""

    async def page(request: Request) -> Response:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})

    async def meta(request: Request) -> Response:
        target = console.backend.t
        return _json(
            {
                "project": target.names.project,
                "bucket": target.bucket,
                "local": target.local,
                "models": list(MODELS),
                "statuses": [str(s) for s in JobStatus],
                "forms": forms.forms(),
                "preview_max_side": previews.PREVIEW_MAX_SIDE,
                "crop_max_side": previews.CROP_MAX_SIDE,
                "page_max": PAGE_MAX,
            }
        )

    async def jobs(request: Request) -> Response:
        q = request.query_params
        f = Filter(q.get("model", ""), q.get("status", ""), q.get("name", "").strip())
        if f.model and f.model not in MODELS or f.status and f.status not in set(JobStatus):
            raise Problem(400, "unknown model or status")
        result = await run_in_threadpool(console.reads.page, f, _int(q.get("limit"), 50), q.get("after", ""))
        return _json(
            {
                "jobs": [views.row(d) for d in result.rows],
                "next": result.next,
                "scanned": result.scanned,
                "partial": result.partial,
            }
        )

    async def job(request: Request) -> Response:
        doc = await _doc(console, request.path_params["job_id"])
        return _json(views.detail(doc, console.backend.t.local))

    async def feed(request: Request) -> Response:
        now = await run_in_threadpool(console.backend.jobs.server_now)
        events = live.stream(live.Feed(console.reads, now), request.is_disconnected)
        return StreamingResponse(
            events,
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    async def image(request: Request) -> Response:
        """A bounded preview of the job's source or result (?max= px on the long side)."""
        bucket, name = await _object(console, request)
        side = _int(request.query_params.get("max"), previews.PREVIEW_MAX_SIDE)
        local = await run_in_threadpool(_local, console, bucket, name)
        try:
            head = await run_in_threadpool(previews.header, local.path)
            data, kind = await run_in_threadpool(previews.preview, local.path, side)
        except previews.PreviewError as exc:
            raise Problem(422, str(exc)) from exc
        headers = {
            "Cache-Control": "private, max-age=300",
            "X-Image-Width": str(head.width),
            "X-Image-Height": str(head.height),
            "X-Image-Alpha": "1" if head.alpha else "0",
        }
        return Response(data, media_type=kind, headers=headers)

    async def info(request: Request) -> Response:
        """The object's size in pixels and bytes (for the crop view), from its header."""
        bucket, name = await _object(console, request)
        local = await run_in_threadpool(_local, console, bucket, name)
        try:
            head = await run_in_threadpool(previews.header, local.path)
        except previews.PreviewError as exc:
            raise Problem(422, str(exc)) from exc
        return _json(
            {
                "width": head.width,
                "height": head.height,
                "alpha": head.alpha,
                "bytes": local.size,
                "name": name,
            }
        )

    async def crop(request: Request) -> Response:
        """A 1:1 region, at most CROP_MAX_SIDE a side (?x=&y=&w=&h= in upright pixels)."""
        bucket, name = await _object(console, request)
        q = request.query_params
        local = await run_in_threadpool(_local, console, bucket, name)
        size = previews.CROP_MAX_SIDE
        try:
            data, region = await run_in_threadpool(
                previews.crop,
                local.path,
                _int(q.get("x"), 0),
                _int(q.get("y"), 0),
                _int(q.get("w"), size),
                _int(q.get("h"), size),
            )
        except previews.PreviewError as exc:
            raise Problem(422, str(exc)) from exc
        return Response(
            data,
            media_type="image/png",
            headers={"Cache-Control": "private, max-age=300", "X-Crop": ",".join(map(str, region))},
        )

    async def download(request: Request) -> Response:
        """The whole object, streamed (full size only when a person asks for it)."""
        bucket, name = await _object(console, request)
        try:
            blob, chunks = await run_in_threadpool(console.objects.chunks, bucket, name)
        except MissingObject as exc:
            raise Problem(404, str(exc)) from exc
        filename = name.rsplit("/", 1)[-1]
        return StreamingResponse(
            chunks,
            media_type=blob.content_type or mimetypes.guess_type(filename)[0] or "application/octet-stream",
            headers={
                "Content-Disposition": f"attachment; filename*=UTF-8''{quote(filename)}",
                "Content-Length": str(blob.size or 0),
                "Cache-Control": "no-store",
            },
        )

    async def retry(request: Request) -> Response:
        """`imagen retry`'s own path: the job queued again and its message published."""
        job_id = request.path_params["job_id"]
        try:
            queued = await run_in_threadpool(cli.retry_job, console.backend, job_id)
        except cli.CliError as exc:
            raise Problem(409, str(exc)) from exc
        logs.job_retried(queued)
        return _json({"job_id": queued, "status": str(JobStatus.QUEUED)})

    async def check_options(request: Request) -> Response:
        fields = await request.json()
        if not isinstance(fields, dict):
            raise Problem(400, "send the options as a JSON object")
        try:
            metadata = forms.check(request.path_params["model"], fields)
        except options.OptionError as exc:
            raise Problem(400, str(exc)) from exc
        return _json({"metadata": metadata})

    async def submit_file(request: Request) -> Response:
        """The request body is the file; ?filename=, ?folder= and the options as ?o.KEY=VALUE."""
        model = request.path_params["model"]
        q = request.query_params
        fields = {k.removeprefix("o."): v for k, v in q.items() if k.startswith("o.")}
        try:
            metadata = forms.check(model, fields)
            name = submit.object_name(model, q.get("filename", ""), q.get("folder", ""))
        except (options.OptionError, submit.SubmitError) as exc:
            raise Problem(400, str(exc)) from exc
        try:
            path, size = await submit.spool(request.stream(), console.workdir / "uploads")
        except submit.SubmitError as exc:
            raise Problem(413, str(exc)) from exc
        try:
            bucket = await run_in_threadpool(console.backend.bucket)
            done = await run_in_threadpool(
                submit.upload, bucket, name, path, metadata, request.headers.get("content-type", "")
            )
        finally:
            path.unlink(missing_ok=True)
        logs.job_submitted(done.job_id, model, done.object, size)
        return _json({"job_id": done.job_id, "object": done.object, "size": size}, 202)

    async def stats(request: Request) -> Response:
        now = await run_in_threadpool(console.backend.jobs.server_now)
        docs, capped = await run_in_threadpool(console.reads.window, now - overview.WINDOW)
        failed = await run_in_threadpool(console.reads.failures)
        services = await run_in_threadpool(_services, console)
        return _json(
            {
                "now": now.isoformat(),
                "window_s": overview.WINDOW.total_seconds(),
                "buckets": overview.BUCKETS,
                "capped": capped,
                "counted": len(docs),
                "models": overview.per_model(docs, now, MODELS),
                "failures": overview.failure_reasons(failed),
                "services": services,
            }
        )

    async def problem(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, Problem)
        return _json({"error": str(exc)}, exc.status)

    async def failure(request: Request, exc: Exception) -> Response:
        logs.request_failed(request.url.path, f"{type(exc).__name__}: {exc}")
        return _json({"error": f"{type(exc).__name__}: {exc}"[:500]}, 500)

    api = "/api"
    routes = [Route(p, page) for p in PAGES] + [
        Route(f"{api}/meta", meta),
        Route(f"{api}/jobs", jobs),
        Route(f"{api}/live", feed),
        Route(f"{api}/overview", stats),
        Route(f"{api}/jobs/{{job_id:str}}", job),
        Route(f"{api}/jobs/{{job_id:str}}/{{side:str}}/preview", image),
        Route(f"{api}/jobs/{{job_id:str}}/{{side:str}}/info", info),
        Route(f"{api}/jobs/{{job_id:str}}/{{side:str}}/crop", crop),
        Route(f"{api}/jobs/{{job_id:str}}/{{side:str}}/download", download),
        Route(f"{api}/jobs/{{job_id:str}}/retry", retry, methods=["POST"]),
        Route(f"{api}/options/{{model:str}}", check_options, methods=["POST"]),
        Route(f"{api}/submit/{{model:str}}", submit_file, methods=["POST"]),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    return Starlette(
        routes=routes,
        middleware=[Middleware(GuardMiddleware, guard=guard)],
        exception_handlers={Problem: problem, Exception: failure},
    )


def _int(raw: str | None, default: int) -> int:
    try:
        return int(float(raw)) if raw not in (None, "") else default
    except ValueError:
        return default


async def _doc(console: Console, job_id: str) -> dict[str, Any]:
    doc = await run_in_threadpool(console.reads.document, job_id)
    if doc is None:
        raise Problem(404, f"no job {job_id}")
    return doc


async def _object(console: Console, request: Request) -> tuple[str, str]:
    """The bucket and name of the job's source or result."""
    side = request.path_params["side"]
    if side not in SIDES:
        raise Problem(404, f"no such side {side!r}: source or result")
    doc = await _doc(console, request.path_params["job_id"])
    uri = doc.get("source_uri") if side == "source" else doc.get("result_uri")
    if not uri:
        raise Problem(404, f"the job has no {side} yet")
    return split_gs_uri(str(uri))


def _local(console: Console, bucket: str, name: str) -> Any:
    try:
        return console.objects.local(bucket, name)
    except MissingObject as exc:
        raise Problem(404, str(exc)) from exc
    except TooLarge as exc:
        raise Problem(422, f"{exc}; download it") from exc


def _services(console: Console) -> dict[str, Any]:
    b = console.backend
    return probes.states(
        {
            "firestore": b.jobs.server_now,
            "pubsub": lambda: b.publisher.check(timeout_s=probes.TIMEOUT_S),
            "storage": lambda: b.gcs.get_bucket(console.bucket, timeout=probes.TIMEOUT_S),
            "triton": probes.triton_ready(console.triton_url) if console.triton_url else None,
        }
    )
