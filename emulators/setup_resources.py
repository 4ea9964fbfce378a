"""Topics, subscriptions and the bucket the local stack needs (idempotent)."""

from __future__ import annotations

import contextlib
import os

from google.api_core import exceptions as gexc
from google.cloud import pubsub_v1, storage  # type: ignore[attr-defined]

from imagen.core.models import MODELS

from .settings import StackSettings


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


def topics(s: StackSettings) -> None:
    """Every topic, created before fake-gcs-server starts (it drops events to a missing topic)."""
    with _emulator_env(s):
        pub = pubsub_v1.PublisherClient()
        sub = pubsub_v1.SubscriberClient()
        names = s.names
        for name in names.topics():
            with contextlib.suppress(gexc.AlreadyExists):
                pub.create_topic(name=names.topic_path(name))
        with contextlib.suppress(gexc.AlreadyExists):
            sub.create_subscription(
                name=names.subscription_path(names.notification_subscription),
                topic=names.topic_path(names.notification_topic),
                ack_deadline_seconds=60,
            )


def job_subscriptions(s: StackSettings) -> None:
    """A subscription per model topic with the production dead-letter policy.

    The bridge delivers them to on_job as push bodies and applies the retry policy itself
    (exponential backoff through the ack deadline): the emulator's own retry_policy stops
    redelivering after two attempts (seen here), see emulators/bridge.py.
    """
    names = s.names
    with _emulator_env(s):
        sub = pubsub_v1.SubscriberClient()
        for model in MODELS:
            request = {
                "name": names.subscription_path(names.job_subscription(model)),
                "topic": names.topic_path(names.job_topic(model)),
                "ack_deadline_seconds": 600,
                "dead_letter_policy": {
                    "dead_letter_topic": names.topic_path(names.dead_letter_topic),
                    "max_delivery_attempts": s.max_delivery_attempts,
                },
            }
            with contextlib.suppress(gexc.AlreadyExists):
                sub.create_subscription(request=request)
        for subscription, topic in (
            (names.dead_letter_subscription, names.dead_letter_topic),
            (names.reconcile_subscription, names.reconcile_topic),
        ):
            request = {
                "name": names.subscription_path(subscription),
                "topic": names.topic_path(topic),
                "ack_deadline_seconds": 60,
            }
            with contextlib.suppress(gexc.AlreadyExists):
                sub.create_subscription(request=request)


def restore(s: StackSettings) -> None:
    """Every topic and subscription again (after a Pub/Sub emulator restart lost them all)."""
    topics(s)
    job_subscriptions(s)


def bucket(s: StackSettings) -> None:
    with _emulator_env(s):
        client = storage.Client(project=s.project)
        with contextlib.suppress(gexc.Conflict):
            client.create_bucket(s.bucket)
