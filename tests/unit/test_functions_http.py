"""The functions under functions-framework's own app, with real CloudEvents (binary and structured)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from functions_framework import create_app

MAIN = str(Path(__file__).resolve().parents[2] / "functions" / "main.py")
NOWHERE = "127.0.0.1:9"  # the clients are built but these tests never reach a service


@pytest.fixture
def upload_client(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "unit")
    for key in ("FIRESTORE_EMULATOR_HOST", "PUBSUB_EMULATOR_HOST"):
        monkeypatch.setenv(key, NOWHERE)
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", f"http://{NOWHERE}")
    return create_app("on_upload", MAIN, "cloudevent").test_client()


def storage_event(name: str) -> dict:
    return {"bucket": "b", "name": name, "generation": "7", "size": "3", "contentType": "image/jpeg"}


def logged(capsys: pytest.CaptureFixture[str]) -> list[dict]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]


@pytest.mark.parametrize("name", ["results/upscale/a.jpg", "nomodel/a.jpg", "upscale/"])
def test_ignored_uploads_binary_mode(upload_client, capsys, name: str) -> None:
    headers = {
        "ce-specversion": "1.0",
        "ce-id": "1",
        "ce-type": "google.cloud.storage.object.v1.finalized",
        "ce-source": "//storage.googleapis.com/projects/_/buckets/b",
        "ce-subject": f"objects/{name}",
        "Content-Type": "application/json",
    }
    resp = upload_client.post("/", data=json.dumps(storage_event(name)), headers=headers)
    assert resp.status_code == 200
    (record,) = [r for r in logged(capsys) if r["event"] == "upload_ignored"]
    assert record["object"] == name and record["severity"] == "INFO"


def test_ignored_upload_structured_mode(upload_client, capsys) -> None:
    body = {
        "specversion": "1.0",
        "id": "2",
        "type": "google.cloud.storage.object.v1.finalized",
        "source": "//storage.googleapis.com/projects/_/buckets/b",
        "datacontenttype": "application/json",
        "data": storage_event("results/x.png"),
    }
    resp = upload_client.post("/", json=body, headers={"Content-Type": "application/cloudevents+json"})
    assert resp.status_code == 200
    assert [r["reason"] for r in logged(capsys) if r["event"] == "upload_ignored"] == ["under results/"]


def test_malformed_storage_event_is_logged_not_retried(upload_client, capsys) -> None:
    headers = {
        "ce-specversion": "1.0",
        "ce-id": "3",
        "ce-type": "google.cloud.storage.object.v1.finalized",
        "ce-source": "//storage.googleapis.com/projects/_/buckets/b",
        "Content-Type": "application/json",
    }
    resp = upload_client.post("/", data=json.dumps({"bucket": "b"}), headers=headers)
    assert resp.status_code == 200
    assert logged(capsys)[0]["event"] == "bad_message"
