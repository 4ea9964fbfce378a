"""Storage and Pub/Sub event parsing, routing rules and job ids."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from emulators.bridge import to_cloudevent
from imagen.jobs import messages

DATA = Path(__file__).resolve().parent.parent / "data"


def recorded_notification() -> dict:
    return json.loads((DATA / "gcs_notification_finalize.json").read_text())


def upload(name: str, metadata: dict[str, str] | None = None) -> messages.Upload:
    return messages.Upload("b", name, "123", 10, "image/jpeg", metadata or {})


def test_parse_recorded_storage_event() -> None:
    rec = recorded_notification()
    up = messages.parse_upload(messages.STORAGE_FINALIZED, rec["data"])
    assert up.bucket == "imagen-local"
    assert up.name == "upscale/cat.jpg"
    assert up.generation == rec["attributes"]["objectGeneration"]
    assert up.size == 28227
    assert up.uri == "gs://imagen-local/upscale/cat.jpg"


def test_parse_rejects_wrong_type_and_missing_fields() -> None:
    with pytest.raises(messages.EventError, match="unexpected event type"):
        messages.parse_upload("google.cloud.storage.object.v1.deleted", {})
    with pytest.raises(messages.EventError, match="lacks"):
        messages.parse_upload(messages.STORAGE_FINALIZED, {"bucket": "b"})


@pytest.mark.parametrize(
    ("name", "model", "reason"),
    [
        ("upscale/cat.jpg", "upscale", "ok"),
        ("background_remove/a/b/c.png", "background_remove", "ok"),
        ("results/upscale/cat.jpg", None, "under results/"),
        ("unknown/cat.jpg", None, "not under a model prefix"),
        ("cat.jpg", None, "not under a model prefix"),
        ("upscale/", None, "folder placeholder"),
        ("upscale/holiday/", None, "folder placeholder"),
        ("upscale", None, "not under a model prefix"),
        ("Upscale/cat.jpg", None, "not under a model prefix"),
    ],
)
def test_route(name: str, model: str | None, reason: str) -> None:
    assert messages.route(upload(name), "results/") == (model, reason)


def test_route_ignores_marked_objects_even_under_a_model_prefix() -> None:
    marked = upload("upscale/cat.jpg", {messages.RESULT_MARKER: "job"})
    assert messages.route(marked, "results/") == (None, "carries the result marker")


def test_job_id_is_per_generation_and_stable() -> None:
    a = messages.job_id("b", "upscale/x.jpg", "1")
    assert a == messages.job_id("b", "upscale/x.jpg", "1")
    assert a != messages.job_id("b", "upscale/x.jpg", "2")
    assert a != messages.job_id("b2", "upscale/x.jpg", "1")
    assert "/" not in a and len(a) == 32


def pubsub_data(payload: bytes, attempt: int | None = None) -> dict:
    data: dict = {
        "message": {"data": base64.b64encode(payload).decode(), "messageId": "1"},
        "subscription": "projects/p/subscriptions/s",
    }
    if attempt:
        data["deliveryAttempt"] = attempt
    return data


def test_job_message_round_trip() -> None:
    msg = messages.JobMessage("id1", "enhance", "b", "enhance/x.jpg", "42")
    parsed, attempt = messages.parse_job_message(messages.PUBSUB_PUBLISHED, pubsub_data(msg.encode(), 3))
    assert parsed == msg
    assert attempt == 3


@pytest.mark.parametrize(
    "payload",
    [
        b"not json",
        b"{}",
        json.dumps({"job_id": "x", "model": "nope", "bucket": "b", "name": "n", "generation": "1"}).encode(),
    ],
)
def test_bad_job_messages(payload: bytes) -> None:
    with pytest.raises(messages.EventError):
        messages.parse_job_message(messages.PUBSUB_PUBLISHED, pubsub_data(payload))


def test_bridge_builds_the_eventarc_cloudevent() -> None:
    rec = recorded_notification()
    converted = to_cloudevent(rec["message_id"], rec["attributes"], json.dumps(rec["data"]).encode())
    assert converted is not None
    headers, body = converted
    assert headers["ce-type"] == messages.STORAGE_FINALIZED
    assert headers["ce-source"] == "//storage.googleapis.com/projects/_/buckets/imagen-local"
    assert headers["ce-subject"] == "objects/upscale/cat.jpg"
    assert messages.parse_upload(headers["ce-type"], body).generation == rec["data"]["generation"]


def test_bridge_skips_other_notifications() -> None:
    rec = recorded_notification()
    assert to_cloudevent("1", {**rec["attributes"], "eventType": "OBJECT_DELETE"}, b"{}") is None


def test_bridge_headers_survive_non_ascii_names() -> None:
    body = json.dumps({"bucket": "b", "name": "upscale/фото 🐱/çà.jpg", "generation": "1"}).encode()
    converted = to_cloudevent("1", {"eventType": "OBJECT_FINALIZE"}, body)
    assert converted is not None
    headers, data = converted
    for value in headers.values():
        value.encode("latin-1")  # HTTP headers: what requests can send
    assert messages.parse_upload(headers["ce-type"], data).name == "upscale/фото 🐱/çà.jpg"


def test_result_names_are_safe_and_fit() -> None:
    from imagen.core.names import Resources

    names = Resources("p")

    def name(obj: str, model: str = "upscale") -> str:
        return names.result_name(model, obj)

    assert name("upscale/a/b.png") == "results/upscale/a/b.png.jpg"
    assert name("background_remove/cat.jpg", "background_remove") == "results/background_remove/cat.jpg.png"
    sanitized = name("upscale/a/../b/./c.jpg")
    assert sanitized.startswith("results/upscale/a/_/b/_/c.jpg-") and sanitized.endswith(".jpg")
    long = "upscale/" + "/".join(["x" * 200] * 5) + ".jpg"
    short = name(long)
    assert len(short.encode()) <= 1024 and short.endswith(".jpg")
    assert short != name(long.replace("x.jpg", "z.jpg"))  # the hash keeps them apart


@pytest.mark.parametrize(
    "group",
    [
        ["upscale/IMG_0001.HEIC", "upscale/IMG_0001.JPG", "upscale/IMG_0001.jpg", "upscale/IMG_0001"],
        [
            "upscale/a/../b.jpg",
            "upscale/a/./b.jpg",
            "upscale/a//b.jpg",
            "upscale/a/_/b.jpg",
            "upscale/a/b.jpg",
        ],
        ["upscale/cat", "upscale/cat.jpg", "upscale/cat.jpg.jpg"],
    ],
)
def test_sources_never_share_a_result_name(group: list[str]) -> None:
    from imagen.core.names import Resources

    names = [Resources("p").result_name("upscale", source) for source in group]
    assert len(set(names)) == len(group), names
