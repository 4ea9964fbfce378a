"""Publishing to the system's topics: job messages to a model's topic, completion events."""

from __future__ import annotations

from collections.abc import Mapping

from google.cloud import pubsub_v1  # type: ignore[attr-defined]

from imagen.core import usage
from imagen.core.names import Resources
from imagen.jobs.messages import JobMessage

PUBLISH_TIMEOUT_S = 60


def make_client() -> pubsub_v1.PublisherClient:
    """Each message is sent at once: a function publishes one and waits for it, so the default
    batching would only add its 10 ms wait to every job."""
    return pubsub_v1.PublisherClient(batch_settings=pubsub_v1.types.BatchSettings(max_messages=1))


class Publisher:
    """Publishes and waits for the server's ack (a lost message would strand a job)."""

    def __init__(self, client: pubsub_v1.PublisherClient, names: Resources) -> None:
        self.client = client
        self.names = names

    def job(self, msg: JobMessage, extra: Mapping[str, str] | None = None) -> None:
        """The job message on its model's topic (`extra`: trace context attributes)."""
        attrs = {"job_id": msg.job_id, "model": msg.model, **(extra or {})}
        self._publish(self.names.job_topic(msg.model), msg.encode(), attrs)

    def event(self, data: bytes, attributes: Mapping[str, str]) -> None:
        """One completion event on the events topic."""
        self._publish(self.names.events_topic, data, attributes)

    def check(self, timeout_s: float = 5) -> None:
        """Raise unless Pub/Sub answers for the events topic (the API's health check)."""
        self.client.get_topic(topic=self.names.topic_path(self.names.events_topic), timeout=timeout_s)

    def _publish(self, topic: str, data: bytes, attributes: Mapping[str, str]) -> None:
        path = self.names.topic_path(topic)
        usage.count(usage.PUBSUB_PUBLISH)
        self.client.publish(path, data, **attributes).result(timeout=PUBLISH_TIMEOUT_S)
