"""The local Eventarc: GCS notifications (from fake-gcs-server) → storage CloudEvents → on_upload.

Pulls the notification subscription, turns each OBJECT_FINALIZE message into the same
`google.cloud.storage.object.v1.finalized` CloudEvent Eventarc delivers (binary mode), and
acknowledges only when the function answered 2xx; otherwise the message comes back.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import requests
from google.api_core import exceptions as gexc
from google.cloud import pubsub_v1  # type: ignore[attr-defined]

from .settings import HOST, StackSettings
from .setup_resources import BRIDGE_SUBSCRIPTION

FINALIZED = "google.cloud.storage.object.v1.finalized"


def to_cloudevent(
    message_id: str, attributes: dict[str, str], data: bytes
) -> tuple[dict[str, str], bytes] | None:
    """CloudEvent headers and body for a GCS notification, or None for other event types."""
    if attributes.get("eventType") != "OBJECT_FINALIZE":
        return None
    obj: dict[str, Any] = json.loads(data or b"{}")
    bucket = obj.get("bucket") or attributes.get("bucketId", "")
    name = obj.get("name") or attributes.get("objectId", "")
    obj.setdefault("bucket", bucket)
    obj.setdefault("name", name)
    obj.setdefault("generation", attributes.get("objectGeneration", ""))
    time_ = obj.get("updated") or obj.get("timeCreated") or attributes.get("eventTime", "")
    headers = {
        "ce-specversion": "1.0",
        "ce-id": message_id,
        "ce-type": FINALIZED,
        "ce-source": f"//storage.googleapis.com/projects/_/buckets/{bucket}",
        "ce-subject": f"objects/{name}",
        "ce-time": time_,
        "Content-Type": "application/json",
    }
    return headers, json.dumps(obj).encode()


class Bridge:
    def __init__(self, s: StackSettings) -> None:
        self.s = s
        self.url = f"http://{HOST}:{s.upload_fn_port}/"
        self.sub = pubsub_v1.SubscriberClient()
        self.path = self.sub.subscription_path(s.project, BRIDGE_SUBSCRIPTION)
        self.stop = threading.Event()
        self.http = requests.Session()

    def deliver(self, received: Any) -> tuple[str, bool]:
        msg = received.message
        event = to_cloudevent(msg.message_id, dict(msg.attributes), msg.data)
        if event is None:
            return received.ack_id, True
        headers, body = event
        try:
            resp = self.http.post(self.url, data=body, headers=headers, timeout=120)
            return received.ack_id, resp.status_code < 300
        except requests.RequestException:
            return received.ack_id, False

    def run(self) -> None:
        with ThreadPoolExecutor(max_workers=8) as pool:
            while not self.stop.is_set():
                try:
                    resp = self.sub.pull(subscription=self.path, max_messages=64, timeout=2)
                except (gexc.DeadlineExceeded, gexc.ServiceUnavailable, gexc.RetryError):
                    continue
                if not resp.received_messages:
                    continue
                results = list(pool.map(self.deliver, resp.received_messages))
                acks = [ack for ack, ok in results if ok]
                nacks = [ack for ack, ok in results if not ok]
                if acks:
                    self.sub.acknowledge(subscription=self.path, ack_ids=acks)
                if nacks:  # back in 5 s, so a restarting function gets the event again
                    self.sub.modify_ack_deadline(
                        subscription=self.path, ack_ids=nacks, ack_deadline_seconds=5
                    )


def main() -> None:
    bridge = Bridge(StackSettings.from_env())
    signal.signal(signal.SIGTERM, lambda *_: bridge.stop.set())
    ready = os.environ.get("IMAGEN_BRIDGE_READY")
    if ready:
        Path(ready).write_text("ready\n")
    print(f"bridge: {bridge.path} -> {bridge.url}", flush=True)
    bridge.run()
    sys.exit(0)


if __name__ == "__main__":
    main()
