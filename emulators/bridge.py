"""The local Eventarc and Pub/Sub push: subscriptions pulled and delivered to the functions over HTTP.

- GCS notifications (from fake-gcs-server) become the `google.cloud.storage.object.v1.finalized`
  CloudEvents Eventarc delivers (binary mode) to on_upload.
- Job and dead-letter messages become Pub/Sub push bodies (with `deliveryAttempt`) posted to
  /projects/P/topics/T of on_job / on_dead_letter, as a push subscription would.

A message is acknowledged only when the function answered 2xx. Otherwise its ack deadline is
set to an exponential backoff (retry policy min..max by delivery attempt), so it comes back
later, and the subscription's dead-letter policy counts the attempt. This is the retry policy
of production (minimum..maximum backoff): the emulator's own push loop and its retry_policy
both stop redelivering after two failed attempts (seen here), so delivery is done here.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import requests
from google.api_core import exceptions as gexc
from google.cloud import pubsub_v1  # type: ignore[attr-defined]

from imagen.core.models import MODELS

from .settings import HOST, StackSettings

FINALIZED = "google.cloud.storage.object.v1.finalized"
Request = tuple[dict[str, str], bytes]
# The Pub/Sub emulator answers a waiting pull by checking for messages every 50 ms, so one pull
# per subscription adds 25 ms on average to every hop; k pulls started at staggered phases cut
# that to 50/(k+1) ms. Each open pull costs the emulator a little CPU, so k is 3-4, not more.
EMULATOR_POLL_S = 0.05


def to_cloudevent(message_id: str, attributes: dict[str, str], data: bytes) -> Request | None:
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
        # CloudEvents' HTTP binding percent-encodes header values outside printable ASCII
        "ce-subject": quote(f"objects/{name}", safe="/ !#$&'()*+,:;=?@[]~"),
        "ce-time": time_,
        "Content-Type": "application/json",
    }
    return headers, json.dumps(obj).encode()


def to_push_body(subscription: str, received: Any) -> Request:
    """The JSON body a Pub/Sub push subscription posts for one message."""
    msg = received.message
    body = {
        "message": {
            "data": base64.b64encode(msg.data).decode(),
            "attributes": dict(msg.attributes),
            "messageId": msg.message_id,
            "publishTime": msg.publish_time.isoformat() if msg.publish_time else "",
        },
        "subscription": subscription,
        "deliveryAttempt": received.delivery_attempt or 1,
    }
    return {"Content-Type": "application/json"}, json.dumps(body).encode()


def backoff_s(s: StackSettings, attempt: int) -> int:
    """The delay before delivery `attempt` + 1 (the retry policy's exponential backoff)."""
    return int(min(s.retry_max_s, s.retry_min_s * 2 ** max(0, attempt - 1)))


@dataclass
class Route:
    subscription: str  # full path
    url: str
    convert: Callable[[Any], Request | None]
    slots: int  # deliveries in flight at once
    pullers: int  # pulls kept open (each costs the emulator a poll every 50 ms)


class Bridge:
    def __init__(self, s: StackSettings) -> None:
        self.s = s
        self.sub = pubsub_v1.SubscriberClient()
        self.pub = pubsub_v1.PublisherClient()
        self.stop = threading.Event()
        self.restoring = threading.Lock()
        self.restored_at = 0.0
        self.http = requests.Session()
        adapter = requests.adapters.HTTPAdapter(pool_maxsize=64)
        self.http.mount("http://", adapter)

    def routes(self) -> list[Route]:
        s, names = self.s, self.s.names

        def gcs(received: Any) -> Request | None:
            m = received.message
            return to_cloudevent(m.message_id, dict(m.attributes), m.data)

        def push(sub_path: str) -> Callable[[Any], Request]:
            return lambda received: to_push_body(sub_path, received)

        gcs_sub = names.subscription_path(names.notification_subscription)
        out = [Route(gcs_sub, f"http://{HOST}:{s.upload_fn_port}/", gcs, 8, 4)]
        for model in MODELS:
            sub = names.subscription_path(names.job_subscription(model))
            url = f"http://{HOST}:{s.job_fn_port(model)}/{names.topic_path(names.job_topic(model))}"
            out.append(Route(sub, url, push(sub), 4, 3))
        dead = names.subscription_path(names.dead_letter_subscription)
        url = f"http://{HOST}:{s.dead_letter_fn_port}/{names.topic_path(names.dead_letter_topic)}"
        out.append(Route(dead, url, push(dead), 4, 1))  # no one waits on a dead letter
        tick = names.subscription_path(names.reconcile_subscription)
        url = f"http://{HOST}:{s.reconcile_fn_port}/{names.topic_path(names.reconcile_topic)}"
        out.append(Route(tick, url, push(tick), 1, 1))
        return out

    def backoff_s(self, attempt: int) -> int:
        return backoff_s(self.s, attempt)

    def deliver(self, route: Route, received: Any, done: threading.Semaphore) -> None:
        """Post one message; acknowledge it on 2xx, otherwise back it off. Always frees the slot."""
        try:
            try:
                request = route.convert(received)
                ok = request is None or (
                    self.http.post(route.url, data=request[1], headers=request[0], timeout=900).status_code
                    < 300
                )
            except Exception as exc:  # the function unreachable, or a message we cannot convert
                ok = False
                print(f"bridge: delivery to {route.url} failed: {type(exc).__name__}: {exc}", flush=True)
            if ok:
                self.sub.acknowledge(subscription=route.subscription, ack_ids=[received.ack_id])
            else:
                delay = self.backoff_s(received.delivery_attempt or 1)
                self.sub.modify_ack_deadline(
                    subscription=route.subscription, ack_ids=[received.ack_id], ack_deadline_seconds=delay
                )
        except Exception as exc:  # the ack deadline runs out and the message comes back
            print(f"bridge: ack on {route.subscription} failed: {type(exc).__name__}: {exc}", flush=True)
        finally:
            done.release()

    def restore(self) -> None:
        """The emulator lost its topics and subscriptions (a restart): create them again, once."""
        from .setup_resources import restore

        with self.restoring:
            if time.monotonic() - self.restored_at < 2:
                return
            try:
                restore(self.s)
                print("bridge: topics and subscriptions restored", flush=True)
            except Exception as exc:
                print(f"bridge: restore failed, will try again: {type(exc).__name__}: {exc}", flush=True)
            self.restored_at = time.monotonic()

    def run_puller(
        self, route: Route, slots: threading.Semaphore, pool: ThreadPoolExecutor, delay_s: float
    ) -> None:
        """One of the route's pullers: a free slot, one hanging pull, a delivery per message.

        Supervised: whatever a pull raises, the slot is given back and the puller goes on; a
        subscription that is gone is restored.
        """
        self.stop.wait(delay_s)
        while not self.stop.is_set():
            if not slots.acquire(timeout=1):
                continue
            received: list[Any] = []
            try:
                resp = self.sub.pull(subscription=route.subscription, max_messages=1, timeout=2)
                received = list(resp.received_messages)
            except (gexc.DeadlineExceeded, gexc.RetryError):
                pass  # nothing to pull within the wait
            except gexc.NotFound:
                self.restore()
            except Exception as exc:  # the emulator restarting, or anything else: keep pulling
                print(f"bridge: pull on {route.subscription}: {type(exc).__name__}: {exc}", flush=True)
                self.stop.wait(1)
            if not received:
                slots.release()
            for item in received:
                pool.submit(self.deliver, route, item, slots)

    def run_ticker(self) -> None:
        """Cloud Scheduler's part: a tick on the reconcile topic every reconcile_every_s."""
        topic = self.s.names.topic_path(self.s.names.reconcile_topic)
        while not self.stop.wait(self.s.reconcile_every_s):
            try:
                self.pub.publish(topic, b"tick").result(timeout=30)
            except gexc.NotFound:
                self.restore()
            except Exception as exc:
                print(f"bridge: reconcile tick: {type(exc).__name__}: {exc}", flush=True)

    def run(self) -> None:
        routes = self.routes()
        with ThreadPoolExecutor(max_workers=sum(r.slots for r in routes)) as pool:
            threads = []
            for r in routes:
                slots = threading.Semaphore(r.slots)
                for i in range(r.pullers):  # staggered across the emulator's polling interval
                    delay = i * EMULATOR_POLL_S / r.pullers
                    threads.append(
                        threading.Thread(
                            target=self.run_puller,
                            args=(r, slots, pool, delay),
                            daemon=True,
                            name=r.subscription,
                        )
                    )
            threads.append(threading.Thread(target=self.run_ticker, daemon=True, name="ticker"))
            for t in threads:
                t.start()
            for t in threads:
                t.join()


def main() -> None:
    bridge = Bridge(StackSettings.from_env())
    signal.signal(signal.SIGTERM, lambda *_: bridge.stop.set())
    ready = os.environ.get("IMAGEN_BRIDGE_READY")
    if ready:
        Path(ready).write_text("ready\n")
    for route in bridge.routes():
        print(f"bridge: {route.subscription} -> {route.url}", flush=True)
    bridge.run()
    print("bridge: stopped", flush=True)
    os._exit(0)  # deliveries still in flight are not acknowledged: they come back


if __name__ == "__main__":
    main()
