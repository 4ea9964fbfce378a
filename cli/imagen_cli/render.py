"""What the CLI prints: progress bars and tables with rich; names made safe for a terminal."""

from __future__ import annotations

import sys
import unicodedata
from collections.abc import Sequence
from types import TracebackType
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn
from rich.table import Table

from imagen.jobs.model import JobStatus, is_terminal

DONE, FAILED, QUEUED = JobStatus.DONE, JobStatus.FAILED, JobStatus.QUEUED

_out = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 160)
_err = Console(stderr=True, highlight=False, soft_wrap=True)


def safe(text: str) -> str:
    """Control characters (escape sequences a hostile object name could carry) made visible."""
    return "".join(
        f"\\x{ord(c):02x}" if unicodedata.category(c) in ("Cc", "Cf") and c != " " else c for c in str(text)
    )


def say(line: str) -> None:
    _out.print(line, markup=False)


def error(line: str) -> None:
    _err.print(line, markup=False)


def seconds(job: dict[str, Any]) -> str:
    if job.get("finished_at") and job.get("created_at"):
        return f"{(job['finished_at'] - job['created_at']).total_seconds():.1f}s"
    return ""


def fraction(job: dict[str, Any] | None) -> float:
    if is_terminal(job):
        return 1.0
    if not job or job.get("status") == QUEUED:
        return 0.0
    return float(job.get("progress", 0.0))


def status_of(job: dict[str, Any] | None) -> str:
    """The status, and what a queued job waits for (a service that is down)."""
    if not job:
        return "waiting"
    status = str(job.get("status", "unknown"))
    if status == QUEUED and job.get("waiting_for"):
        return f"{status}, waiting for {job['waiting_for']}"
    return status


def note(job: dict[str, Any]) -> str:
    """What a person listing jobs wants next to a status: why it failed, or what it waits for."""
    if job.get("status") == FAILED:  # every failure records a reason; its last error otherwise
        return str(job.get("reason") or job.get("last_error") or "")
    if job.get("status") == QUEUED and job.get("waiting_for"):
        return str(job.get("last_error") or "")
    return ""


def describe(job: dict[str, Any]) -> None:
    """One job: its fields, then its history."""
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    for key in ("job_id", "model", "status", "source_uri", "attempts", "result_uri", "reason"):
        if job.get(key) not in (None, ""):
            table.add_row(key, safe(status_of(job) if key == "status" else str(job[key])))
    if job.get("waiting_for"):
        since = job.get("waiting_since")
        table.add_row(
            "waiting_for",
            f"{job['waiting_for']}"
            + (f" since {since:%Y-%m-%d %H:%M:%S}" if since else "")
            + f" ({job.get('waits', 0)} deliveries turned away; no attempt spent)",
        )
    plan = job.get("time_plan") or (job.get("output") or {}).get("time_plan")
    if plan:
        table.add_row(
            "time_plan",
            f"~{plan['total_s']:.0f} s: decode {plan['decode_s']:.1f}, "
            f"{plan['tiles']} tiles x {plan['tile_s']:g} s, encode {plan['encode_s']:.1f}",
        )
    if job.get("options"):
        table.add_row("options", safe(", ".join(f"{k}={v}" for k, v in sorted(job["options"].items()))))
    if job.get("last_error") and job.get("status") != DONE:
        table.add_row("last_error", safe(job["last_error"]))
    if job.get("timings"):
        table.add_row("timings", ", ".join(f"{k}={v}" for k, v in job["timings"].items()))
    for h in job.get("history", []):
        extra = f" (attempt {h['attempt']})" if h.get("attempt") else ""
        extra += " (retry)" if h.get("retry") else ""
        extra += f" (waiting for {h['waiting_for']}, attempt given back)" if h.get("waiting_for") else ""
        extra += " (waited past the horizon)" if h.get("waited") else ""
        table.add_row("", f"{h['at']:%Y-%m-%d %H:%M:%S} {h['status']}{extra}")
    _out.print(table)


_COLUMNS = ("created", "job", "model", "status", "secs")
OBJECT_MIN_WIDTH = 16  # `imagen jobs`: the narrowest the object and reason columns may get
REASON_MIN_WIDTH = 24


def job_table(rows: Sequence[dict[str, Any]], clear: bool = False) -> None:
    """The jobs as a table; on a terminal too narrow for it, one block per job. Either way a
    failed job's reason (a queued one's wait) is printed whole: it is what the list is read for."""
    if clear and _out.is_terminal:
        _out.clear()
    if not rows:
        say("no jobs yet")
        return
    cells = [
        (
            f"{r['created_at']:%Y-%m-%d %H:%M:%S}",
            str(r["job_id"]),
            str(r["model"]),
            status_of(r),
            seconds(r)[:-1],
            safe(r["object"]),
            safe(note(r)),
        )
        for r in rows
    ]
    fixed = [max(len(name), *(len(c[i]) for c in cells)) for i, name in enumerate(_COLUMNS)]
    if sum(fixed) + OBJECT_MIN_WIDTH + REASON_MIN_WIDTH + 3 * (len(_COLUMNS) + 2) + 1 > _out.width:
        for created, job, model, status, secs, obj, why in cells:
            say(f"{job}  {status}  {model}  {created}" + (f"  {secs}s" if secs else ""))
            say(f"    {obj}")
            if why:
                say(f"    {why}")
        return
    table = Table()
    for name in _COLUMNS:
        table.add_column(name, no_wrap=True)
    table.add_column("object", overflow="fold", min_width=OBJECT_MIN_WIDTH)
    table.add_column("reason / waiting on", overflow="fold", min_width=REASON_MIN_WIDTH, ratio=1)
    for row in cells:
        table.add_row(*row)
    _out.print(table)


class JobProgress:
    """A bar per job on a terminal; one line per status change otherwise (logs, CI)."""

    def __init__(self, submitted: Sequence[tuple[str, str]]) -> None:
        self.submitted = submitted
        self.shown: dict[str, str] = {}
        self.progress: Progress | None = None
        self.tasks: dict[str, TaskID] = {}

    def __enter__(self) -> JobProgress:
        if _out.is_terminal:
            self.progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                TextColumn("{task.fields[status]}"),
                console=_out,
            )
            self.progress.start()
            for name, jid in self.submitted:
                self.tasks[jid] = self.progress.add_task(safe(name[-40:]), total=1.0, status="waiting")
        return self

    def update(self, docs: dict[str, dict[str, Any]]) -> None:
        for name, jid in self.submitted:
            job = docs.get(jid)
            status = status_of(job)
            if self.progress is not None:
                self.progress.update(self.tasks[jid], completed=fraction(job), status=status)
            elif self.shown.get(jid) != status:
                self.shown[jid] = status
                say(f"{safe(name[-40:]):40} {fraction(job) * 100:3.0f}% {status}")

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.progress is not None:
            self.progress.stop()
