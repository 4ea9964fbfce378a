"""What the page is sent about a job: plain JSON from the stored document (times as ISO strings).

The reason column is `imagen jobs`' (render.note); the events are the ones the job's history
says were published (imagen.jobs.events names them: a start per claim, one per ending).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from imagen.core.names import split_gs_uri
from imagen.jobs import events
from imagen.jobs.model import JobStatus

from .. import render

Doc = Mapping[str, Any]
STAGES = ("download_s", "decode_s", "infer_s", "encode_s", "upload_s")  # the timings bar, in order


def iso(value: Any) -> str | None:
    return value.isoformat() if isinstance(value, dt.datetime) else None


def _plain(value: Any) -> Any:
    """Firestore values as JSON: datetimes as ISO strings, maps and lists walked."""
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, bool | int | float | str) or value is None:
        return value
    return str(value)


def duration_s(doc: Doc) -> float | None:
    """From creation to the end (or None while it runs)."""
    created, finished = doc.get("created_at"), doc.get("finished_at")
    if isinstance(created, dt.datetime) and isinstance(finished, dt.datetime):
        return round((finished - created).total_seconds(), 3)
    return None


def row(doc: Doc) -> dict[str, Any]:
    """A row of the jobs table."""
    return {
        "job_id": str(doc.get("job_id", "")),
        "object": str(doc.get("object", "")),
        "model": str(doc.get("model", "")),
        "status": str(doc.get("status", "")),
        "waiting_for": str(doc.get("waiting_for") or ""),
        "progress": float(doc.get("progress") or 0.0),
        "attempts": int(doc.get("attempts") or 0),
        "created_at": iso(doc.get("created_at")),
        "started_at": iso(doc.get("started_at")),
        "finished_at": iso(doc.get("finished_at")),
        "updated_at": iso(doc.get("updated_at")),
        "duration_s": duration_s(doc),
        "note": render.note(dict(doc)),
    }


def published(doc: Doc) -> list[dict[str, Any]]:
    """The events the job's history says it published, oldest first, with their ce-id."""
    job_id = str(doc.get("job_id", ""))
    out: list[dict[str, Any]] = []
    starts = ends = 0
    for entry in doc.get("history") or []:
        status = entry.get("status")
        if status == JobStatus.RUNNING:
            starts += 1
            kind, seq = events.STARTED_TYPE, starts
        elif status in (JobStatus.DONE, JobStatus.FAILED):
            ends += 1
            kind, seq = (events.DONE_TYPE if status == JobStatus.DONE else events.FAILED_TYPE), ends
        else:
            continue
        out.append(
            {"type": kind, "id": f"{job_id}-{kind.rsplit('.', 1)[-1]}-{seq}", "at": iso(entry.get("at"))}
        )
    return out


def stage_bar(timings: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The stages of the timings bar, in the order a job runs them (the worker's laps: together
    they make total_s; infer_wait_s is a part of infer, not a stage of its own)."""
    return [
        {"stage": k.removesuffix("_s"), "s": float(timings[k])} for k in STAGES if _number(timings.get(k))
    ]


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def object_links(uri: str, local: bool) -> dict[str, str]:
    """Where a person finds the object: its gs:// URI, and the Cloud console's page of a real one."""
    if not uri:
        return {}
    bucket, name = split_gs_uri(uri)
    links = {"uri": uri}
    if not local:
        links["cloud"] = f"https://console.cloud.google.com/storage/browser/_details/{bucket}/{quote(name)}"
    return links


def detail(doc: Doc, local: bool) -> dict[str, Any]:
    """The job page: the row, and everything else the document tells."""
    out = row(doc)
    out.update(
        source_uri=str(doc.get("source_uri", "")),
        result_uri=str(doc.get("result_uri") or ""),
        reason=str(doc.get("reason") or ""),
        last_error=str(doc.get("last_error") or ""),
        options=_plain(doc.get("options") or {}),
        output=_plain(doc.get("output") or {}),
        timings=_plain(doc.get("timings") or {}),
        stages=stage_bar(doc.get("timings") or {}),
        time_plan=_plain(doc.get("time_plan") or (doc.get("output") or {}).get("time_plan") or {}),
        history=_plain(list(doc.get("history") or [])),
        events=published(doc),
        retryable=doc.get("status") == JobStatus.FAILED,
        model_version=str(doc.get("model_version") or ""),
        size_bytes=int(doc.get("size_bytes") or 0),
        links={
            "source": object_links(str(doc.get("source_uri", "")), local),
            "result": object_links(str(doc.get("result_uri") or ""), local),
        },
    )
    return out
