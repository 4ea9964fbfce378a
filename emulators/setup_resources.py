"""Topics, subscriptions and the bucket the local stack needs (idempotent)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

from google.api_core import exceptions as gexc
from google.cloud import pubsub_v1, storage  # type: ignore[attr-defined]

from .settings import MODELS, StackSettings

BRIDGE_SUBSCRIPTION = "imagen-gcs-notifications-bridge"


class _emulator_env:
    """Temporarily point the google-cloud clients at the stack."""

    def __init__(self, s: StackSettings) -> None:
        self.env = s.client_env()
        self.saved: dict[str, str | None] = {}

    def __enter__(self) -> None:
        for k, v in self.env.items():
            self.saved[k] = os.environ.get(k)
            os.environ[k] = v

    def __exit__(self, *exc: object) -> None:
        for k, old in self.saved.items():
            if old is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = old


def topic_names(s: StackSettings) -> Iterator[str]:
    yield s.notification_topic
    yield s.dead_letter_topic
    yield "imagen-events"
    for model in MODELS:
        yield f"imagen-{model}"


def topics(s: StackSettings) -> None:
    """Every topic, created before fake-gcs-server starts (it drops events to a missing topic)."""
    with _emulator_env(s):
        pub = pubsub_v1.PublisherClient()
        sub = pubsub_v1.SubscriberClient()
        for name in topic_names(s):
            with contextlib.suppress(gexc.AlreadyExists):
                pub.create_topic(name=pub.topic_path(s.project, name))
        with contextlib.suppress(gexc.AlreadyExists):
            sub.create_subscription(
                name=sub.subscription_path(s.project, BRIDGE_SUBSCRIPTION),
                topic=pub.topic_path(s.project, s.notification_topic),
                ack_deadline_seconds=60,
            )


def job_subscription_name(model: str) -> str:
    return f"imagen-{model}-worker"


def dead_letter_subscription_name(s: StackSettings) -> str:
    return f"{s.dead_letter_topic}-handler"


def job_subscriptions(s: StackSettings) -> None:
    """A subscription per model topic with the production dead-letter policy.

    The bridge delivers them to on_job as push bodies and applies the retry policy itself
    (exponential backoff through the ack deadline): the emulator's own retry_policy stops
    redelivering after two attempts (seen here), see emulators/bridge.py.
    """
    with _emulator_env(s):
        pub = pubsub_v1.PublisherClient()
        sub = pubsub_v1.SubscriberClient()
        for model in MODELS:
            request = {
                "name": sub.subscription_path(s.project, job_subscription_name(model)),
                "topic": pub.topic_path(s.project, f"imagen-{model}"),
                "ack_deadline_seconds": 600,
                "dead_letter_policy": {
                    "dead_letter_topic": pub.topic_path(s.project, s.dead_letter_topic),
                    "max_delivery_attempts": s.max_delivery_attempts,
                },
            }
            with contextlib.suppress(gexc.AlreadyExists):
                sub.create_subscription(request=request)
        request = {
            "name": sub.subscription_path(s.project, dead_letter_subscription_name(s)),
            "topic": pub.topic_path(s.project, s.dead_letter_topic),
            "ack_deadline_seconds": 60,
        }
        with contextlib.suppress(gexc.AlreadyExists):
            sub.create_subscription(request=request)


def bucket(s: StackSettings) -> None:
    with _emulator_env(s):
        client = storage.Client(project=s.project)
        with contextlib.suppress(gexc.Conflict):
            client.create_bucket(s.bucket)
