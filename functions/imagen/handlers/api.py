"""The HTTP API (function `api`): a way in that is not a bucket, over the same event path.

    POST /api/v1/images/{model}       multipart form: `file`, and options as fields (format=webp …);
                                      `Prefer: wait=N` answers when the job ends, within N s
    POST /api/v1/uploads/{model}      JSON {filename, content_type, options}: a signed PUT URL
    GET  /api/v1/jobs/{job_id}        the job; a done one carries a signed link to its result
    GET  /api/v1/jobs/{job_id}/result 303 to that link
    GET  /api/v1/jobs?object=NAME     the job of an object's current generation
    GET  /api/v1/jobs                 the caller's newest jobs (?status=, ?model=, ?limit=)
    GET  /health                      up or down; operators also get each dependency's check

Every /api/v1 request names its caller with a bearer token (imagen.core.identity). A job made
through the API is its caller's: another caller gets 404, exactly as for a job that does not
exist. Operators (API_OPERATORS) read every job. Errors are JSON with a stable message; a fault
of ours or of a service also carries an `error_id`, which the log line of the fault repeats.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import flask

from imagen.cloud.objects import refusal
from imagen.cloud.signing import Signer
from imagen.core import identity, logs, metadata, options, usage
from imagen.core.config import Config
from imagen.core.errors import BadInput, NotAnImage
from imagen.core.formats import INPUT_TYPES, UPLOAD_TYPES
from imagen.core.identity import Caller
from imagen.core.models import MODELS, spec_for
from imagen.core.names import gs_uri, object_name
from imagen.flow import intake
from imagen.flow.services import Services
from imagen.jobs import events, messages
from imagen.jobs.model import Job, JobStatus

API = "/api/v1"
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")
_JOB_ID = re.compile(r"[0-9a-f]{32}")
_PREFER_WAIT = re.compile(r"(?:^|[;,\s])wait\s*=\s*(\d+)", re.IGNORECASE)
# Job fields an API caller sees: the events' summary and its timestamps (holder tokens and
# lease bookkeeping stay inside).
PUBLIC_FIELDS = (*events.SUMMARY_KEYS, "progress", "created_at", "finished_at")
# Failures that came from the services around us, not from the file: a caller is told so in
# stable words; the detail (exception text) is for operators and the log.
SERVICE_FAILURES = ("waited", "gave_up", "dead_letter")
LIST_LIMIT = 100


@dataclass(frozen=True)
class Reply:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] | None = None


class ApiError(Exception):
    """An answer other than success, in words meant for the caller."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.headers = status, headers


@dataclass(frozen=True)
class Call:
    """One request's context: the deployment, its services, the verified caller."""

    cfg: Config
    svc: Services
    request: flask.Request
    caller: Caller
    signer: Signer | None
    started: float  # time.monotonic() when the request came in (a wait counts from it)


def handle_api(cfg: Config, svc: Services, request: flask.Request, signer: Signer | None = None) -> Reply:
    """Route one request; every answer is JSON, errors included."""
    with usage.metered("api"):
        return _handle(cfg, svc, request, signer)


def _handle(cfg: Config, svc: Services, request: flask.Request, signer: Signer | None) -> Reply:
    path, method, started = request.path.rstrip("/") or "/", request.method, time.monotonic()
    try:
        if path == "/health" and method == "GET":
            return health(cfg, svc, _caller_or_none(cfg, request))
        if not path.startswith(API):
            raise ApiError(404, f"no such endpoint {path}")
        call = Call(cfg, svc, request, _caller(cfg, request), signer, started)
        return _route(call, path.removeprefix(API), method)
    except ApiError as exc:
        return Reply(exc.status, {"error": str(exc)}, exc.headers)
    except Exception as exc:  # a stable answer; the detail stays in the log, under its id
        error_id = secrets.token_hex(8)
        logs.api_error(path, f"{type(exc).__name__}: {exc}", error_id)
        if refusal(exc) is not None:  # storage or Firestore refused or failed
            message = "a service imagen depends on failed; try again later"
            return Reply(502, {"error": message, "error_id": error_id})
        return Reply(500, {"error": "internal error", "error_id": error_id})


def _route(call: Call, path: str, method: str) -> Reply:
    if path.startswith("/images/") and method == "POST":
        return post_image(call, _model(path.removeprefix("/images/")))
    if path.startswith("/uploads/") and method == "POST":
        return post_upload_url(call, _model(path.removeprefix("/uploads/")))
    if path.startswith("/jobs/") and path.endswith("/result") and method == "GET":
        return get_result(call, path.removeprefix("/jobs/").removesuffix("/result"))
    if path.startswith("/jobs/") and method == "GET":
        return get_job(call, path.removeprefix("/jobs/"))
    if path == "/jobs" and method == "GET":
        if "object" in call.request.args:
            return job_of_object(call, call.request.args.get("object", ""))
        return list_jobs(call)
    if any(path.startswith(k) for k in ("/images/", "/uploads/", "/jobs")):
        raise ApiError(405, f"{method} is not allowed on {API}{path}")
    raise ApiError(404, f"no such endpoint {API}{path}")


def _caller(cfg: Config, request: flask.Request) -> Caller:
    try:
        headers = {k: request.headers.get(k, "") for k in ("Authorization", identity.VERIFIED_BY_CLOUD_RUN)}
        return identity.caller(headers, cfg.api_auth, cfg.api_operators, cfg.api_local_key)
    except identity.Unauthenticated as exc:
        logs.api_unauthenticated(request.path, str(exc))
        raise ApiError(401, str(exc), {"WWW-Authenticate": 'Bearer realm="imagen"'}) from exc


def _caller_or_none(cfg: Config, request: flask.Request) -> Caller | None:
    if not {"Authorization", identity.VERIFIED_BY_CLOUD_RUN} & set(request.headers.keys()):
        return None
    try:
        return _caller(cfg, request)
    except ApiError:
        return None


def _model(name: str) -> str:
    if name not in MODELS:
        raise ApiError(404, f"unknown model {name!r}; one of: {', '.join(MODELS)}")
    return name


def _options(model: str, given: Any) -> options.Options:
    """Form fields or JSON keys (with or without the imagen- prefix), checked."""
    if not isinstance(given, dict) or not all(isinstance(v, (str, int, float)) for v in given.values()):
        raise ApiError(400, 'options must be an object of strings, e.g. {"format": "webp"}')
    fields = {k: v for k, v in options.from_fields(given).items() if k != metadata.OWNER}
    try:
        return options.parse(model, fields)
    except options.OptionError as exc:
        raise ApiError(400, str(exc)) from exc


def _object_name(model: str, filename: str) -> str:
    """Under the model prefix, in a folder of its own: two uploads of one file name never meet."""
    safe = _SAFE_NAME.sub("_", filename.rsplit("/", 1)[-1]).strip("._") or "upload"
    return f"{model}/api/{uuid.uuid4().hex}/{safe[:200]}"


def post_image(call: Call, model: str) -> Reply:
    cfg, request = call.cfg, call.request
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
        raise ApiError(400, "the body is not a multipart form with the image as the field 'file'") from exc
    if file is None:
        raise ApiError(400, "no file: send the image as the multipart form field 'file'")
    opts = _options(model, fields)
    data = file.read(limit + 1)
    if len(data) > limit:
        raise ApiError(413, _too_large(None, limit))
    content_type = _check_image(cfg, model, data, opts)
    name = _object_name(model, file.filename or "upload")
    record = {**opts.record(), metadata.OWNER: call.caller.email}
    generation = call.svc.storage.put(cfg.bucket, name, data, content_type, record, if_generation_match=0)
    upload = messages.Upload(cfg.bucket, name, str(generation), len(data), content_type, record)
    job_id = intake.queue_upload(cfg.names, call.svc, upload, model)
    usage.name_job(job_id, model)
    logs.api_upload(job_id, model, name, len(data), call.caller.email)
    wait_s = _prefer_wait(request, cfg.api_max_wait_s)
    left_s = wait_s - (time.monotonic() - call.started)  # counted from the request's arrival
    job = _wait_for(call.svc, job_id, left_s) if wait_s else None
    headers = {"Location": f"{API}/jobs/{job_id}"}
    if wait_s:
        headers["Preference-Applied"] = f"wait={wait_s}"
    if job is not None and job.terminal:  # ended within the wait: the answer is the job itself
        return Reply(200, view(call, job), headers)
    body = {
        "job_id": job_id,
        "model": model,
        "status": str(job.status if job else JobStatus.QUEUED),
        "object": gs_uri(cfg.bucket, name),
        "options": opts.record(),
        "status_url": f"{API}/jobs/{job_id}",
    }
    return Reply(202, body, headers)


def _check_image(cfg: Config, model: str, data: bytes, opts: options.Options) -> str:
    """The upload's Content-Type, from its own bytes; refused now if its job could never run
    (not an image, over the limits, or a result its options make too large or too slow)."""
    from imagen.flow.planning import plan_job  # the image libraries: only for an upload
    from imagen.image import imaging

    try:  # only the header: a file that is not an image is refused before it is stored
        image, header = imaging.probe(data, cfg.max_input_bytes, cfg.max_input_pixels)
        image.close()
        plan_job(cfg, spec_for(model, opts.upscaler or cfg.upscale_default), header, len(data), opts)
    except NotAnImage as exc:
        raise ApiError(415, str(exc)) from exc
    except BadInput as exc:
        raise ApiError(400, str(exc)) from exc
    return INPUT_TYPES[header.format]


def _too_large(length: int | None, limit: int) -> str:
    size = f"the body is {length} bytes" if length else "the file is too large"
    return (
        f"{size}; the API takes files up to {limit} bytes: ask POST {API}/uploads/{{model}} for a signed URL"
    )


def _prefer_wait(request: flask.Request, most_s: int) -> int:
    """Seconds the caller asks to wait for its job (`Prefer: wait=N`, as Replicate's API), capped."""
    found = _PREFER_WAIT.search(request.headers.get("Prefer", ""))
    return min(int(found.group(1)), most_s) if found else 0


def _wait_for(svc: Services, job_id: str, wait_s: float) -> Job | None:
    """The job once it has ended, or as it is when `wait_s` has passed (reads back off to 2 s)."""
    deadline, pause = time.monotonic() + wait_s, 0.25
    while True:
        job = svc.jobs.get(job_id)
        left = deadline - time.monotonic()
        if job is None or job.terminal or left <= 0:
            return job
        time.sleep(min(pause, left))
        pause = min(pause * 2, 2.0)


def post_upload_url(call: Call, model: str) -> Reply:
    """A signed URL to PUT a large file to, with its options as headers the URL is signed for."""
    cfg = call.cfg
    spec = call.request.get_json(silent=True)
    if not isinstance(spec, dict):
        raise ApiError(
            400, 'send JSON: {"filename": "photo.jpg", "content_type": "image/jpeg", "options": {}}'
        )
    content_type = str(spec.get("content_type") or "").lower()
    if content_type not in UPLOAD_TYPES:
        raise ApiError(
            400, f"content_type must be one of {', '.join(sorted(UPLOAD_TYPES))}; got {content_type!r}"
        )
    record = {**_options(model, spec.get("options") or {}).record(), metadata.OWNER: call.caller.email}
    name = _object_name(model, str(spec.get("filename") or "upload"))
    # the size is part of what is signed: a PUT outside it is refused by Cloud Storage
    headers = {
        "x-goog-content-length-range": f"0,{cfg.max_input_bytes}",
        **{f"x-goog-meta-{k}": v for k, v in record.items()},
    }
    if call.signer is None:
        raise ApiError(501, "this deployment cannot sign upload URLs")
    ttl = dt.timedelta(seconds=cfg.api_link_ttl_s)
    url = call.svc.storage.sign_put(cfg.bucket, name, call.signer, ttl, content_type, headers)
    body = {
        "upload_url": url,
        "method": "PUT",
        "headers": {"Content-Type": content_type, **headers},
        "object": gs_uri(cfg.bucket, name),
        "expires_in_s": cfg.api_link_ttl_s,
        "status_url": f"{API}/jobs?object={name}",
        "max_bytes": cfg.max_input_bytes,
    }
    return Reply(200, body)


def view(call: Call, job: Job, links: bool = True) -> dict[str, Any]:
    """The job as this caller may see it: the public fields, a caller-safe reason, and a signed
    link to the result of a done job. Operators also get the owner and the last error."""
    out: dict[str, Any] = {}
    for key in PUBLIC_FIELDS:
        value = getattr(job, key)
        if value is None or value == "" or (key in ("timings", "output") and not value):
            continue
        out[key] = value.isoformat() if isinstance(value, dt.datetime) else value
    out["options"] = dict(out.get("options") or {})
    if job.reason and not call.caller.operator:
        out["reason"] = caller_reason(job)
    if call.caller.operator:
        out.update({k: v for k, v in (("owner", job.owner), ("last_error", job.last_error)) if v})
    if links and job.status == JobStatus.DONE and job.result_uri and call.signer is not None:
        out["result_url"] = _result_link(call, job)
        out["result_expires_in_s"] = call.cfg.api_link_ttl_s
    return out


def caller_reason(job: Job) -> str:
    """Why the job failed, in words for its caller: about the file as recorded, or, when the
    services around us failed it, a stable sentence (the detail is the operators')."""
    ended = job.history[-1] if job.history else {}
    if any(ended.get(flag) for flag in SERVICE_FAILURES):
        return (
            f"imagen could not process this image: a service it needs kept failing after "
            f"{job.attempts} attempt(s); the operators can look it up by the job id"
        )
    return job.reason


def _result_link(call: Call, job: Job) -> str:
    assert call.signer is not None
    filename = _SAFE_NAME.sub("_", object_name(job.result_uri).rsplit("/", 1)[-1]) or "result"
    ttl = dt.timedelta(seconds=call.cfg.api_link_ttl_s)
    return call.svc.storage.sign_get(job.result_uri, call.signer, ttl, filename)


def _visible_job(call: Call, job_id: str) -> Job:
    """The job, if this caller may see it; otherwise 404, as if there were none."""
    if not _JOB_ID.fullmatch(job_id):
        raise ApiError(404, f"no job {job_id!r}: a job id is 32 hex digits")
    job = call.svc.jobs.get(job_id)
    if job is None or not call.caller.may_read(job.owner):
        raise ApiError(404, f"no job {job_id}")
    return job


def get_job(call: Call, job_id: str) -> Reply:
    return Reply(200, view(call, _visible_job(call, job_id)))


def get_result(call: Call, job_id: str) -> Reply:
    """303 to a short-lived signed link to the job's result."""
    job = _visible_job(call, job_id)
    if job.status != JobStatus.DONE or not job.result_uri:
        raise ApiError(409, f"job {job_id} is {job.status}: it has no result (yet)")
    if call.signer is None:
        raise ApiError(501, "this deployment cannot sign result links")
    url = _result_link(call, job)
    return Reply(303, {"result_url": url, "expires_in_s": call.cfg.api_link_ttl_s}, {"Location": url})


def job_of_object(call: Call, name: str) -> Reply:
    """The job of the object's current generation, when it is this caller's."""
    if not name:
        raise ApiError(400, "give the object: ?object=<name in the bucket>")
    upload = messages.Upload(call.cfg.bucket, name, "0", 0, "", {})
    routed = messages.route(upload, call.cfg.names.result_prefix)[0] is not None
    generation = call.svc.storage.generation(call.cfg.bucket, name) if routed else None
    job = None
    if generation is not None:
        job = call.svc.jobs.get(messages.job_id(call.cfg.bucket, name, str(generation)))
    if job is None or not call.caller.may_read(job.owner):  # one answer: nothing about others' objects
        raise ApiError(404, f"no job of yours for {name!r} (not uploaded yet, or its event is on its way)")
    return Reply(200, view(call, job))


def list_jobs(call: Call) -> Reply:
    """The caller's newest jobs (operators: everyone's, or one owner's with ?owner=)."""
    args = call.request.args
    try:
        limit = int(args.get("limit", "20"))
        status = JobStatus(args["status"]) if args.get("status") else None
    except ValueError as exc:
        raise ApiError(400, "limit is a whole number; status one of queued, running, done, failed") from exc
    if not 1 <= limit <= LIST_LIMIT:
        raise ApiError(400, f"limit must be from 1 to {LIST_LIMIT}")
    model = _model(args["model"]) if args.get("model") else None
    owner = (args.get("owner", "").lower() or None) if call.caller.operator else call.caller.email
    docs = call.svc.queries.recent(limit, status, model, owner)
    # no signed links in a list (one signature each): a job's own answer carries its link
    return Reply(200, {"jobs": [view(call, Job.from_doc(d), links=False) for d in docs]})


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


def health(cfg: Config, svc: Services, caller: Caller | None) -> Reply:
    """200 up when Firestore, Pub/Sub and Triton answer, 503 down otherwise; an operator also
    gets each check, its time and its error. Triton is checked where the API can reach it (not
    in the cloud: only the workers' network path leads to Triton, so TRITON_URL is empty)."""

    def firestore() -> object:
        return svc.jobs.server_now()

    def pubsub() -> object:
        svc.publisher.check(timeout_s=5)
        return True

    def triton() -> object:
        if not svc.inference.ready():
            raise RuntimeError(f"Triton at {cfg.triton_url} is not ready")
        return True

    probes: dict[str, Callable[[], object]] = {"firestore": firestore, "pubsub": pubsub}
    if cfg.triton_url:
        probes["triton"] = triton
    checks = {name: _check(probe) for name, probe in probes.items()}
    healthy = all(c["ok"] for c in checks.values())
    body: dict[str, Any] = {"status": "up" if healthy else "down"}
    if caller is not None and caller.operator:
        body["checks"] = checks
    if not healthy:
        failed = "; ".join(f"{k}: {c['error']}" for k, c in checks.items() if not c["ok"])
        logs.api_error("/health", failed, "")
    return Reply(200 if healthy else 503, body)


def reply(result: Reply) -> flask.Response:
    """The Reply as Flask's response."""
    response = flask.jsonify(result.body)
    response.status_code = result.status
    for key, value in (result.headers or {}).items():
        response.headers[key] = value
    return response
