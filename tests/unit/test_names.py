"""Every name derives from one Resources object."""

from __future__ import annotations

import pytest

from imagen.core.models import MODELS
from imagen.core.names import Resources, gs_uri, object_name, split_gs_uri


def test_names_derive_from_the_prefix() -> None:
    names = Resources("p", topic_prefix="t-")
    assert names.job_topic("upscale") == "t-upscale"
    assert names.job_subscription("upscale") == "t-upscale-worker"
    assert names.dead_letter_topic == "t-dead-letter"
    assert names.dead_letter_subscription == "t-dead-letter-handler"
    assert names.events_topic == "t-events"
    assert names.topic_path("t-events") == "projects/p/topics/t-events"
    assert set(names.topics()) >= {f"t-{m}" for m in MODELS} | {"t-events", "t-dead-letter"}


def test_production_names_match_terraform() -> None:
    names = Resources.from_env({}, "p")
    assert (names.job_topic("enhance"), names.events_topic) == ("imagen-enhance", "imagen-events")
    assert names.dead_letter_subscription == "imagen-dead-letter-handler"
    assert Resources.from_env({"EVENTS_TOPIC": "chain"}, "p").events_topic == "chain"


def test_gs_uris() -> None:
    uri = gs_uri("b", "results/upscale/a b/c.jpg")
    assert split_gs_uri(uri) == ("b", "results/upscale/a b/c.jpg")
    assert object_name(uri) == "results/upscale/a b/c.jpg"
    with pytest.raises(ValueError, match="not a gs:// object URI"):
        split_gs_uri("https://b/c")
