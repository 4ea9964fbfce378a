"""Topics, subscriptions and the bucket the local stack needs (idempotent)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

from google.api_core import exceptions as gexc
from google.cloud import pubsub_v1, storage  # type: ignore[attr-defined]
from google.protobuf import duration_pb2

from .settings import HOST, MODELS, StackSettings

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


def push_subscriptions(s: StackSettings) -> None:
    """Model topics pushed to their on_job function, as Eventarc's Pub/Sub trigger does.

    The push path is /projects/P/topics/T so functions-framework names the right source.
    """
    with _emulator_env(s):
        pub = pubsub_v1.PublisherClient()
        sub = pubsub_v1.SubscriberClient()
        for model in MODELS:
            topic = f"imagen-{model}"
            endpoint = f"http://{HOST}:{s.job_fn_port(model)}/projects/{s.project}/topics/{topic}"
            request = {
                "name": sub.subscription_path(s.project, f"{topic}-worker"),
                "topic": pub.topic_path(s.project, topic),
                "push_config": {"push_endpoint": endpoint},
                "ack_deadline_seconds": 600,
                "retry_policy": {
                    "minimum_backoff": duration_pb2.Duration(seconds=2),
                    "maximum_backoff": duration_pb2.Duration(seconds=60),
                },
            }
            with contextlib.suppress(gexc.AlreadyExists):
                sub.create_subscription(request=request)


def bucket(s: StackSettings) -> None:
    with _emulator_env(s):
        client = storage.Client(project=s.project)
        with contextlib.suppress(gexc.Conflict):
            client.create_bucket(s.bucket)
