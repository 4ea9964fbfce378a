"""The `imagen` command in this process against the real emulators: status, jobs, retry, submit,
and the messages a user gets when something is missing. (--wait needs workers: tests/system.)"""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Callable
from typing import Any

import pytest
from google.cloud import pubsub_v1  # type: ignore[attr-defined]

from emulators.stack import Stack
from imagen.core.names import object_name
from imagen.jobs.model import Claim, Outcome
from imagen_cli import app, render

from .conftest import SAMPLE, Harness

Run = Callable[..., tuple[int, str, str]]
# The function runtime's modules (and the image libraries) that the CLI must run without.
FUNCTIONS_ONLY = (
    "imagen.flow.services",
    "imagen.handlers.upload",
    "imagen.inference.runner",
    "imagen.inference.breaker",
    "imagen.image.imaging",
    "numpy",
    "PIL",
    "tritonclient",
)


@pytest.fixture
def imagen(stack: Stack, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Run:
    """Runs `imagen --local --project P --bucket B ARGS…`; returns (exit status, stdout, stderr)."""
    for key, value in stack.s.client_env().items():
        monkeypatch.setenv(key, value)  # restored after the test, whatever the CLI sets

    def run(*args: str, port_base: int | None = None) -> tuple[int, str, str]:
        monkeypatch.setenv("IMAGEN_PORT_BASE", str(port_base or stack.s.port_base))
        target = ["--project", stack.s.project, "--bucket", stack.s.bucket]
        code = app.main(["--local", *target, *args])
        out = capsys.readouterr()
        return code, out.out, out.err

    return run


def failed_job(harness: Harness, name: str) -> str:
    job_id = harness.upload(name, b"")
    assert harness.run(job_id)["status"] == "failed"
    return job_id


def test_status_by_id_and_by_object(imagen: Run, harness: Harness, unique: str) -> None:
    name = f"enhance/cli-{unique}/empty.jpg"
    job_id = failed_job(harness, name)
    code, out, _ = imagen("status", job_id)
    assert code == 0 and "failed" in out and "the file is empty" in out and "(attempt 1)" in out
    code, out, _ = imagen("status", f"gs://{harness.bucket_name}/{name}")
    assert code == 0 and job_id in out
    code, _, err = imagen("status", f"nothing-{unique}")
    assert code == 2 and f"no job or object 'nothing-{unique}'" in err


def test_jobs_lists_the_newest_with_filters(imagen: Run, harness: Harness, unique: str) -> None:
    job_id = failed_job(harness, f"enhance/cli-{unique}/empty.jpg")
    code, out, _ = imagen("jobs", "--status", "failed", "--model", "enhance", "--limit", "50")
    assert code == 0 and job_id in out
    code, out, _ = imagen("jobs", "--status", "done", "--model", "enhance", "--limit", "50")
    assert code == 0 and job_id not in out


def test_retry_queues_a_failed_job_and_publishes_it(
    imagen: Run, harness: Harness, stack: Stack, unique: str
) -> None:
    names = harness.cfg.names
    job_id = failed_job(harness, f"enhance/cli-{unique}/empty.jpg")
    sub = pubsub_v1.SubscriberClient()
    path = names.subscription_path(f"cli-retry-{unique}")  # sees only what is published from now
    sub.create_subscription(name=path, topic=names.topic_path(names.job_topic("enhance")))
    try:
        code, out, _ = imagen("retry", job_id)
        assert code == 0 and f"job {job_id} queued again" in out
        job = harness.svc.jobs.document(job_id) or {}
        assert job["status"] == "queued" and job["history"][-1]["retry"] is True
        received = sub.pull(subscription=path, max_messages=10, timeout=10).received_messages
        assert [json.loads(m.message.data)["job_id"] for m in received] == [job_id]
        code, _, err = imagen("retry", job_id)
        assert code == 2 and "is queued; only failed jobs can be retried" in err
    finally:
        sub.delete_subscription(subscription=path)


def test_retry_refuses_a_running_job(imagen: Run, harness: Harness, unique: str) -> None:
    job_id = harness.upload(f"enhance/cli-{unique}/cat.jpg", SAMPLE.read_bytes())
    assert isinstance(harness.svc.jobs.claim(job_id, lease_s=60, max_attempts=5), Claim)
    code, _, err = imagen("retry", job_id)
    assert code == 2 and "is running; only failed jobs can be retried" in err


def test_submit_uploads_under_the_model_prefix(imagen: Run, harness: Harness, unique: str) -> None:
    code, out, _ = imagen("submit", "style_aged", str(SAMPLE), "--prefix", f"cli-{unique}")
    assert code == 0
    name = f"style_aged/cli-{unique}/cat.jpg"
    assert f"submitted gs://{harness.bucket_name}/{name}" in out
    blob: Any = harness.bucket.get_blob(name)
    assert blob is not None and blob.size == SAMPLE.stat().st_size


def test_clear_messages(imagen: Run, unique: str, tmp_path: Any) -> None:
    code, _, err = imagen("jobs", port_base=19500)
    assert code == 2 and "the local stack is not running" in err and "nox -s up" in err
    code, _, err = imagen("--bucket", f"no-such-{unique}", "submit", "upscale", str(SAMPLE))
    assert code == 2 and f"bucket gs://no-such-{unique} does not exist" in err
    code, _, err = imagen("submit", "sharpen", str(SAMPLE))
    assert code == 2 and "unknown model 'sharpen'" in err
    code, _, err = imagen("submit", "upscale", str(tmp_path / "missing.jpg"))
    assert code == 2 and "no such file" in err


def test_control_characters_in_names_are_not_printed_raw(imagen: Run, harness: Harness, unique: str) -> None:
    name = f"enhance/cli-{unique}/evil\x1b[2J.jpg"
    job_id = failed_job(harness, name)
    code, out, _ = imagen("status", job_id)
    assert code == 0 and "\x1b" not in out and "evil\\x1b[2J.jpg" in out


def test_backfill_creates_the_missing_jobs_once(
    imagen: Run, harness: Harness, unique: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from imagen.jobs import messages

    for module in FUNCTIONS_ONLY:  # what the CLI installed alone lacks: importing it fails
        monkeypatch.setitem(sys.modules, module, None)
    prefix = f"bf-{unique}"
    names = [f"style_aged/{prefix}/{i}.jpg" for i in range(3)]
    generations = [harness.put(n, SAMPLE.read_bytes())["generation"] for n in names[:2]]
    refused = harness.put(names[2], SAMPLE.read_bytes(), **{"imagen-format": "tiff"})["generation"]
    harness.put(f"style_aged/{prefix}/folder/", b"")  # a folder placeholder: no job
    code, out, _ = imagen("backfill", "style_aged", "--prefix", prefix, "--dry-run")
    assert code == 0 and "would create 3 jobs" in out and names[0] in out
    ids = [
        messages.job_id(harness.bucket_name, n, g)
        for n, g in zip(names, [*generations, refused], strict=True)
    ]
    assert harness.svc.jobs.existing(ids) == set()  # a dry run changes nothing
    code, out, _ = imagen("backfill", "style_aged", "--prefix", prefix)
    assert code == 0 and "3 objects under" in out and "created 3 jobs" in out
    jobs = [harness.svc.jobs.document(i) or {} for i in ids]
    assert [j["status"] for j in jobs] == ["queued", "queued", "failed"]
    assert "imagen-format must be one of" in jobs[2]["reason"]  # checked as on_upload checks it
    code, out, _ = imagen("backfill", "style_aged", "--prefix", prefix)
    assert code == 0 and "created 0 jobs" in out  # the second run finds every job


def test_backfill_all_runs_finished_jobs_again_and_rewrites_their_results(
    triton: Stack, imagen: Run, harness: Harness, unique: str
) -> None:
    job_id = harness.upload(f"style_aged/bfa-{unique}/cat.jpg", SAMPLE.read_bytes())
    first = harness.run(job_id)
    assert first["status"] == "done"
    before = harness.bucket.get_blob(object_name(first["result_uri"]))
    code, out, _ = imagen("backfill", "style_aged", "--prefix", f"bfa-{unique}", "--all")
    assert code == 0 and "ran 1 again" in out
    queued = harness.svc.jobs.document(job_id) or {}
    assert queued["status"] == "queued" and queued["run"] == 1 and "event_published" not in queued
    again = harness.run(job_id)
    assert again["status"] == "done" and again["output"]["result_reused"] is False
    after = harness.bucket.get_blob(object_name(again["result_uri"]))
    assert after.generation != before.generation and after.metadata["imagen-run"] == "1"


def test_submit_with_options_checks_them_first(imagen: Run, harness: Harness, unique: str) -> None:
    code, _, err = imagen("submit", "enhance", str(SAMPLE), "-o", "scale=2")
    assert code == 2 and "imagen-scale applies to upscale only" in err  # nothing was uploaded
    code, out, _ = imagen("submit", "enhance", str(SAMPLE), "--prefix", f"o-{unique}", "-o", "format=webp")
    assert code == 0, out
    blob = harness.bucket.get_blob(f"enhance/o-{unique}/{SAMPLE.name}")
    assert blob.metadata == {"imagen-format": "webp"}
    from imagen.handlers.upload import handle_upload
    from imagen.jobs import messages

    job_id = handle_upload(harness.cfg, harness.svc, messages.STORAGE_FINALIZED, blob._properties)
    code, out, _ = imagen("status", str(job_id))
    assert code == 0 and "imagen-format=webp" in out


def test_status_and_jobs_say_what_a_queued_job_waits_for(imagen: Run, harness: Harness, unique: str) -> None:
    job_id = harness.upload(f"enhance/cli-{unique}/cat.jpg", SAMPLE.read_bytes())
    error = "ServiceDown: Triton unreachable at 10.0.0.9:8000: Connection refused"
    assert harness.svc.jobs.note_waiting(job_id, "triton", error, 3600) is Outcome.WAITING
    code, out, _ = imagen("status", job_id)
    assert code == 0 and "queued, waiting for triton" in out
    assert "1 deliveries turned away; no attempt spent" in out and "Connection refused" in out
    code, out, _ = imagen("jobs", "--status", "queued", "--model", "enhance", "--limit", "200")
    flat = " ".join(out.split())  # the table wraps long cells
    assert job_id in flat and "waiting for" in flat and "10.0.0.9:8000" in flat
    failed = failed_job(harness, f"enhance/cli-{unique}/empty.jpg")
    code, out, _ = imagen("jobs", "--status", "failed", "--model", "enhance", "--limit", "200")
    assert failed in out and "the file is empty" in out  # a failure's reason, in the list


def test_the_jobs_list_shows_a_failed_jobs_reason_on_a_narrow_terminal(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An 80-column terminal: the table would squeeze the reason to nothing; one block a job instead."""
    import datetime as dt

    from rich.console import Console

    out = io.StringIO()
    monkeypatch.setattr(render, "_out", Console(file=out, width=80, highlight=False, soft_wrap=True))
    at = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    failed: dict[str, Any] = {
        "created_at": at,
        "finished_at": at + dt.timedelta(seconds=2),
        "job_id": "f" * 32,
        "model": "background_remove",
        "status": "failed",
        "object": "background_remove/holiday/2025/a-rather-long-file-name-from-a-phone.jpg",
        "reason": "not an image: the file looks like text",
    }
    waiting = {**failed, "job_id": "a" * 32, "status": "queued", "reason": "", "finished_at": None}
    waiting.update(waiting_for="triton", last_error="ServiceDown: Triton unreachable at 10.0.0.9:8000")
    render.job_table([failed, waiting])
    text = out.getvalue()
    assert "not an image: the file looks like text" in text and "f" * 32 in text
    assert "Triton unreachable at 10.0.0.9:8000" in text and "queued, waiting for triton" in text
    assert failed["object"] in text and "    not an image: the file looks like text" in text.splitlines()
    out = io.StringIO()
    monkeypatch.setattr(render, "_out", Console(file=out, width=160, highlight=False, soft_wrap=True))
    render.job_table([failed])  # wide enough: the table, the reason in its column
    assert "reason / waiting on" in out.getvalue() and "not an image: the file looks" in out.getvalue()


def test_a_prefix_scan_reads_each_upload_from_public_fields(harness: Harness, unique: str) -> None:
    """ObjectStore.uploads: what the storage event would say of each object (as parse_upload reads
    the event), with its creation time; from a start offset, at most max_results."""
    from imagen.jobs import messages

    prefix = f"enhance/scan-{unique}/"
    harness.put(prefix + "a.jpg", SAMPLE.read_bytes(), **{"imagen-format": "webp", "owner": "ana"})
    harness.put(prefix + "b.png", b"not really", content_type="image/png")
    harness.put(prefix + "c.jpg", b"")
    listed = list(harness.svc.storage.uploads(harness.bucket_name, prefix))
    assert [x.upload.name for x in listed] == [prefix + n for n in ("a.jpg", "b.png", "c.jpg")]
    for x in listed:
        event = harness.bucket.get_blob(x.upload.name)._properties
        assert x.upload == messages.parse_upload(messages.STORAGE_FINALIZED, event)
        assert x.created is not None
    assert listed[0].upload.metadata == {"imagen-format": "webp", "owner": "ana"}
    assert listed[1].upload.content_type == "image/png" and listed[2].upload.size == 0
    rest = harness.svc.storage.uploads(harness.bucket_name, prefix, start_offset=prefix + "b", max_results=1)
    assert [x.upload.name for x in rest] == [prefix + "b.png"]
