"""No loops: results, folder placeholders, marked copies and objects under no model prefix start
no job (through the bridge)."""

from __future__ import annotations

from typing import Any

import pytest

from imagen.core.names import object_name
from imagen.jobs.messages import RESULT_MARKER

from .conftest import SAMPLE, log_events, upload, wait_finished, wait_until

MODEL = "style_aged"


def ignored(stack: Any, name: str) -> bool:
    return any(r["object"] == name for r in log_events(stack, "fn-on_upload", "upload_ignored"))


@pytest.mark.parametrize(
    ("name", "metadata"),
    [
        ("{m}/{u}/", {}),  # folder placeholder
        ("{m}/{u}/copied-result.jpg", {RESULT_MARKER: "some-job"}),  # a result copied under a prefix
        ("results/{m}/{u}/x.jpg", {}),
        ("paintings/{u}/cat.jpg", {}),  # not under a model prefix
    ],
    # An object named exactly like a prefix ("style_aged") is covered by tests/unit/test_events.py:
    # fake-gcs-server's filesystem backend cannot hold a file and a folder of the same name.
    ids=["folder-placeholder", "result-marker", "under-results", "unknown-prefix"],
)
def test_no_job_and_no_loop(
    bucket: Any, jobs_col: Any, stack: Any, unique: str, name: str, metadata: dict[str, str]
) -> None:
    name = name.format(m=MODEL, u=unique)
    jid = upload(bucket, name, SAMPLE.read_bytes(), **metadata)
    wait_until(
        lambda: any(r["object"] == name for r in log_events(stack, "fn-on_upload", "upload_ignored")), 60
    )
    assert not jobs_col.document(jid).get().exists


def test_results_never_start_jobs(bucket: Any, jobs_col: Any, stack: Any, unique: str) -> None:
    jid = upload(bucket, f"{MODEL}/{unique}/loop.jpg", SAMPLE.read_bytes())
    job = wait_finished(jobs_col, jid, timeout_s=60)
    result = object_name(job["result_uri"])
    wait_until(
        lambda: any(r["object"] == result for r in log_events(stack, "fn-on_upload", "upload_ignored")), 60
    )
    created = log_events(stack, "fn-on_upload", "job_created")
    assert not [r for r in created if r["object"].startswith("results/")]
