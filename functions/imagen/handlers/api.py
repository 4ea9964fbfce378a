"""The HTTP API (function `api`): a way in that is not a bucket, over the same event path.

    POST /api/v1/images/{model}     multipart form: `file`, and options as fields (format=webp …)
    POST /api/v1/uploads/{model}    JSON {filename, content_type, options}: a signed PUT URL
    GET  /api/v1/jobs/{job_id}      the job
    GET  /api/v1/jobs?object=NAME   the job of an object's current generation
    GET  /health                    Firestore, Pub/Sub and Triton, each checked

An upload is written under the model prefix, so the storage event runs it exactly as it runs a
`gcloud storage cp`; the API also creates the job at once (the same idempotent step the event
takes), so the id it answers with is readable straight away. Its options are checked before
anything is written: a bad one is a 400 naming the key.
"""

from __future__ import annotations

import datetime as dt
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import flask

from imagen.cloud.objects import refusal
from imagen.cloud.signing import Signer
from imagen.core import logs, options
from imagen.core.config import Config
from imagen.core.errors import NotAnImage
from imagen.core.models import MODELS
from imagen.core.names import gs_uri
from imagen.flow import intake
from imagen.flow.services import Services
from imagen.image import imaging
from imagen.jobs import events, messages
from imagen.jobs.model import Job

API = "/api/v1"
SIGNED_URL_TTL = dt.timedelta(minutes=15)
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")
# Job fields an API caller sees: the events' summary and its timestamps (holder tokens and
# lease bookkeeping stay inside).
PUBLIC_FIELDS = (*events.SUMMARY_KEYS, "progress", "created_at", "finished_at")


@dataclass(frozen=True)
class Reply:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] | None = None


def handle_api(cfg: Config, svc: Services, request: flask.Request, signer: Signer | None = None) -> Reply:
    """Route one request; every answer is JSON, errors included."""
    path, method = request.path.rstrip("/") or "/", request.method
    try:
        if path == "/health" and method == "GET":
            return health(cfg, svc)
        if path.startswith(f"{API}/images/") and method == "POST":
            return post_image(cfg, svc, request, path.removeprefix(f"{API}/images/"))
        if path.startswith(f"{API}/uploads/") and method == "POST":
            return post_upload_url(cfg, svc, request, path.removeprefix(f"{API}/uploads/"), signer)
        if path.startswith(f"{API}/jobs/") and method == "GET":
            return get_job(svc, path.removeprefix(f"{API}/jobs/"))
        if path == f"{API}/jobs" and method == "GET":
            return job_of_object(cfg, svc, request.args.get("object", ""))
        known = (f"{API}/images/", f"{API}/uploads/", f"{API}/jobs", "/health")
        if any(path.startswith(k.rstrip("/")) for k in known):
            return Reply(405, {"error": f"{method} is not allowed on {path}"})
        return Reply(404, {"error": f"no such endpoint {path}"})
    except ApiError as exc:
        return Reply(exc.status, {"error": str(exc)})
    except Exception as exc:  # still JSON, and the details stay in the log
        refused = refusal(exc)  # e.g. an object outside what this API may read
        if refused is not None:
            return Reply(refused[0], {"error": f"storage or database refused: {refused[1]}"})
        logs.api_error(path, f"{type(exc).__name__}: {exc}")
        return Reply(500, {"error": "internal error; see the function's log"})


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _model(name: str) -> str:
    if name not in MODELS:
        raise ApiError(404, f"unknown model {name!r}; one of: {', '.join(MODELS)}")
    return name


def _options(model: str, given: Any) -> dict[str, str]:
    """Form fields or JSON keys (with or without the imagen- prefix) as checked option metadata."""
    if not isinstance(given, dict):
        raise ApiError(400, 'options must be an object of strings, e.g. {"format": "webp"}')
    try:
        return options.parse(model, options.from_fields(given)).record()
    except options.OptionError as exc:
        raise ApiError(400, str(exc)) from exc


def _object_name(model: str, filename: str) -> str:
    """Under the model prefix, in a folder of its own: two uploads of one file name never meet."""
    safe = _SAFE_NAME.sub("_", filename.rsplit("/", 1)[-1]).strip("._") or "upload"
    return f"{model}/api/{uuid.uuid4().hex}/{safe[:200]}"


def post_image(cfg: Config, svc: Services, request: flask.Request, model_name: str) -> Reply:
    model = _model(model_name)
    limit = cfg.api_max_upload_bytes
    if request.content_length is not None and request.content_length > limit + 64 * 1024:
        raise ApiError(413, _too_large(request.content_length, limit))
    request.max_content_length = limit + 64 * 1024  # a body with no length is cut off here too
    try:
        file = request.files.get("file")
        fields = {k: v for k, v in request.form.items()}
    except Exception as exc:  # werkzeug's RequestEntityTooLarge, or a malformed body
        if getattr(exc, "code", None) == 413:
            raise ApiError(413, _too_large(request.content_length, limit)) from exc
        raise ApiError(400, f"the body is not a multipart form ({exc})") from exc
    if file is None:
        raise ApiError(400, "no file: send the image as the multipart form field 'file'")
    record = _options(model, fields)
    data = file.read(limit + 1)
    if len(data) > limit:
        raise ApiError(413, _too_large(None, limit))
    try:  # only the header: a file that is not an image is refused before it is stored
        imaging.probe(data, cfg.max_input_bytes, cfg.max_input_pixels)
    except NotAnImage as exc:
        raise ApiError(415, str(exc)) from exc
    except Exception as exc:
        raise ApiError(400, str(exc)) from exc
    name = _object_name(model, file.filename or "upload")
    content_type = file.mimetype or "application/octet-stream"
    generation = svc.storage.put(cfg.bucket, name, data, content_type, record, if_generation_match=0)
    upload = messages.Upload(cfg.bucket, name, str(generation), len(data), content_type, record)
    job_id = intake.queue_upload(cfg.names, svc, upload, model)
    logs.api_upload(job_id, model, name, len(data))
    body = {
        "job_id": job_id,
        "model": model,
        "object": gs_uri(cfg.bucket, name),
        "options": record,
        "status_url": f"{API}/jobs/{job_id}",
    }
    return Reply(202, body, {"Location": f"{API}/jobs/{job_id}"})


def _too_large(length: int | None, limit: int) -> str:
    size = f"the body is {length} bytes" if length else "the file is too large"
    return (
        f"{size}; the API takes files up to {limit} bytes: ask POST {API}/uploads/{{model}} for a signed URL"
    )


def post_upload_url(
    cfg: Config, svc: Services, request: flask.Request, model_name: str, signer: Signer | None
) -> Reply:
    """A signed URL to PUT a large file to, with its options as headers the URL is signed for."""
    model = _model(model_name)
    spec = request.get_json(silent=True)
    if not isinstance(spec, dict):
        raise ApiError(
            400, 'send JSON: {"filename": "photo.jpg", "content_type": "image/jpeg", "options": {}}'
        )
    content_type = str(spec.get("content_type") or "")
    if not content_type.startswith("image/"):
        raise ApiError(400, f"content_type must be an image type such as image/jpeg; got {content_type!r}")
    record = _options(model, spec.get("options") or {})
    name = _object_name(model, str(spec.get("filename") or "upload"))
    # the size is part of what is signed: a PUT outside it is refused by Cloud Storage
    headers = {
        "x-goog-content-length-range": f"0,{cfg.max_input_bytes}",
        **{f"x-goog-meta-{k}": v for k, v in record.items()},
    }
    if signer is None:
        raise ApiError(501, "this deployment cannot sign upload URLs")
    url = svc.storage.sign_put(cfg.bucket, name, signer, SIGNED_URL_TTL, content_type, headers)
    body = {
        "upload_url": url,
        "method": "PUT",
        "headers": {"Content-Type": content_type, **headers},
        "object": gs_uri(cfg.bucket, name),
        "expires_in_s": int(SIGNED_URL_TTL.total_seconds()),
        "status_url": f"{API}/jobs?object={name}",
        "max_bytes": cfg.max_input_bytes,
    }
    return Reply(200, body)


def public(job: Job) -> dict[str, Any]:
    """The fields a caller sees, those the job has (no empty reason, no timings before it ran)."""
    out: dict[str, Any] = {}
    for key in PUBLIC_FIELDS:
        value = getattr(job, key)
        if value is None or value == "" or (key in ("timings", "output") and not value):
            continue
        out[key] = value.isoformat() if isinstance(value, dt.datetime) else value
    out["options"] = dict(out.get("options") or {})
    return out


def get_job(svc: Services, job_id: str) -> Reply:
    if not re.fullmatch(r"[0-9a-f]{32}", job_id):
        raise ApiError(404, f"no job {job_id!r}: a job id is 32 hex digits")
    job = svc.jobs.get(job_id)
    if job is None:
        raise ApiError(404, f"no job {job_id}")
    return Reply(200, public(job))


def job_of_object(cfg: Config, svc: Services, name: str) -> Reply:
    if not name:
        raise ApiError(400, "give the object: ?object=<name in the bucket>")
    generation = svc.storage.generation(cfg.bucket, name)
    if generation is None:
        raise ApiError(404, f"no object {name!r} (not uploaded yet?)")
    job = svc.jobs.get(messages.job_id(cfg.bucket, name, str(generation)))
    if job is None:
        raise ApiError(404, f"{name} has no job yet (its event may still be on its way)")
    return Reply(200, public(job))


def _check(probe: Callable[[], object]) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        probe()
        ok, error = True, None
    except Exception as exc:
        ok, error = False, f"{type(exc).__name__}: {exc}"[:300]
    out: dict[str, Any] = {"ok": ok, "ms": round((time.perf_counter() - started) * 1000, 1)}
    if error:
        out["error"] = error
    return out


def health(cfg: Config, svc: Services) -> Reply:
    """200 when Firestore, Pub/Sub and Triton all answer; 503 with what failed otherwise."""

    def firestore() -> object:
        return svc.jobs.server_now()

    def pubsub() -> object:
        svc.publisher.check(timeout_s=5)
        return True

    def triton() -> object:
        if not svc.inference.ready():
            raise RuntimeError(f"Triton at {cfg.triton_url} is not ready")
        return True

    checks = {"firestore": _check(firestore), "pubsub": _check(pubsub), "triton": _check(triton)}
    healthy = all(c["ok"] for c in checks.values())
    return Reply(200 if healthy else 503, {"status": "ok" if healthy else "degraded", "checks": checks})


def reply(result: Reply) -> flask.Response:
    """The Reply as Flask's response."""
    response = flask.jsonify(result.body)
    response.status_code = result.status
    for key, value in (result.headers or {}).items():
        response.headers[key] = value
    return response
