"""Background delivery of signed webhook events with retries, duplicates and reordering.

One thread sends every delivery, so a slow receiver delays the deliveries
behind it, as it would with a provider that limits concurrency per endpoint.
Deliveries are at-least-once. A receiver gets the same event again when its
2xx response comes after the sender timed out, or when a duplicate fault is on.
"""
from __future__ import annotations

import heapq
import http.client
import itertools
import json
import random
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from payments import signatures
from payments.simulator.faults import REORDER_OFF, REORDER_SHUFFLE
from payments.simulator.ids import new_id

STATE_PENDING = "pending"
STATE_HELD = "held"
STATE_DELIVERING = "delivering"
STATE_DELIVERED = "delivered"
STATE_FAILED = "failed"
STATE_SKIPPED = "skipped"

# Delivery records kept for GET /_control/webhooks; older ones are dropped first.
MAX_DELIVERY_RECORDS = 10_000
_MAX_ERROR_TEXT = 200


@dataclass(frozen=True)
class DeliveryOptions:
    """Fault settings that apply to one event, copied from the faults when the event is raised."""

    enabled: bool = True
    copies: int = 1
    delay_seconds: float = 0.0
    reorder: str = REORDER_OFF
    reorder_window_seconds: float = 1.0


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 8
    base_delay_seconds: float = 0.5
    max_delay_seconds: float = 30.0
    request_timeout_seconds: float = 5.0

    def delay_after(self, attempts: int) -> float:
        """Return the wait before the next attempt: the base delay doubled per failed attempt, capped."""
        return min(self.base_delay_seconds * 2 ** (attempts - 1), self.max_delay_seconds)


@dataclass
class Delivery:
    id: str
    event_id: str
    event_type: str
    payment_intent: str | None
    body: bytes
    copy: int
    generation: int
    due: float
    created: float = field(default_factory=time.time)
    state: str = STATE_PENDING
    attempts: int = 0
    last_status: int | None = None
    last_error: str | None = None
    delivered_at: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "event_id": self.event_id,
            "type": self.event_type,
            "payment_intent": self.payment_intent,
            "copy": self.copy,
            "state": self.state,
            "attempts": self.attempts,
            "last_status": self.last_status,
            "last_error": self.last_error,
            "created": self.created,
            "delivered_at": self.delivered_at,
        }


class WebhookDispatcher:
    """Queue of webhook deliveries that a background thread sends and retries with backoff."""

    def __init__(
        self,
        *,
        url: str,
        secret: str,
        logger: Any,
        retry_policy: RetryPolicy,
        rng: random.Random,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if url:
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError(f"webhook URL must be an absolute http or https URL, got {url!r}")
        self._url = url
        self._secret = secret
        self._logger = logger
        self._policy = retry_policy
        self._rng = rng
        self._clock = clock

        self._condition = threading.Condition()
        self._queue: list[tuple[float, int, Delivery]] = []
        self._sequence = itertools.count()
        self._reorder_buffer: list[Delivery] = []
        self._reorder_mode = REORDER_OFF
        self._reorder_release_at: float | None = None
        self._records: OrderedDict[str, Delivery] = OrderedDict()
        self._generation = 0
        self._stopping = False
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="webhook-dispatcher", daemon=True)
        self._thread.start()

    def stop(self, timeout_seconds: float = 5.0) -> int:
        """Stop the thread and return how many deliveries were still waiting; those are lost."""
        with self._condition:
            self._stopping = True
            waiting = len(self._queue) + len(self._reorder_buffer)
            self._condition.notify_all()
        if self._thread is not None:
            self._thread.join(timeout_seconds)
        return waiting

    def publish(self, event: dict[str, Any], options: DeliveryOptions) -> None:
        """Queue `event` for delivery with the fault settings in `options`."""
        body = json.dumps(event, separators=(",", ":")).encode("utf-8")
        event_object = event["data"]["object"]
        payment_intent = event_object.get("id") if isinstance(event_object, dict) else None

        with self._condition:
            now = self._clock()
            if not options.enabled or not self._url:
                delivery = self._new_delivery(event, payment_intent, body, copy=1, due=now)
                delivery.state = STATE_SKIPPED
                self._logger.info(
                    "webhook.skipped",
                    event_id=event["id"],
                    event_type=event["type"],
                    payment_intent=payment_intent,
                    reason="webhooks disabled" if self._url else "no webhook URL configured",
                )
                return

            for copy_number in range(1, options.copies + 1):
                delivery = self._new_delivery(
                    event, payment_intent, body, copy=copy_number, due=now + options.delay_seconds
                )
                if options.reorder == REORDER_OFF:
                    self._push(delivery)
                    continue
                delivery.state = STATE_HELD
                self._reorder_buffer.append(delivery)
                if self._reorder_release_at is None:
                    # The window starts with the first held event, and every event
                    # raised before it ends is released together in the new order.
                    self._reorder_release_at = now + options.reorder_window_seconds
                    self._reorder_mode = options.reorder
            self._condition.notify_all()

    def reset(self) -> None:
        """Drop every waiting delivery and record; a delivery in flight finishes but is not recorded."""
        with self._condition:
            self._generation += 1
            self._queue.clear()
            self._reorder_buffer.clear()
            self._reorder_release_at = None
            self._records.clear()
            self._condition.notify_all()

    def deliveries(self, payment_intent: str | None = None) -> list[dict[str, Any]]:
        with self._condition:
            return [
                delivery.to_json()
                for delivery in self._records.values()
                if payment_intent is None or delivery.payment_intent == payment_intent
            ]

    def _new_delivery(
        self, event: dict[str, Any], payment_intent: str | None, body: bytes, *, copy: int, due: float
    ) -> Delivery:
        delivery = Delivery(
            id=new_id("whd"),
            event_id=event["id"],
            event_type=event["type"],
            payment_intent=payment_intent,
            body=body,
            copy=copy,
            generation=self._generation,
            due=due,
        )
        self._records[delivery.id] = delivery
        while len(self._records) > MAX_DELIVERY_RECORDS:
            self._records.popitem(last=False)
        return delivery

    def _push(self, delivery: Delivery) -> None:
        delivery.state = STATE_PENDING
        heapq.heappush(self._queue, (delivery.due, next(self._sequence), delivery))

    def _release_reordered(self, now: float) -> None:
        released = self._reorder_buffer
        if self._reorder_mode == REORDER_SHUFFLE:
            self._rng.shuffle(released)
        else:
            released.reverse()
        self._logger.info(
            "webhook.reorder_released",
            mode=self._reorder_mode,
            event_ids=[delivery.event_id for delivery in released],
        )
        for delivery in released:
            # Equal due times keep the new order, because the heap breaks ties by sequence.
            delivery.due = max(delivery.due, now)
            self._push(delivery)
        self._reorder_buffer = []
        self._reorder_release_at = None

    def _next_due(self) -> Delivery | None:
        """Wait until a delivery is due and return it, or return None when stopping."""
        with self._condition:
            while not self._stopping:
                now = self._clock()
                if self._reorder_release_at is not None and self._reorder_release_at <= now:
                    self._release_reordered(now)
                if self._queue and self._queue[0][0] <= now:
                    delivery = heapq.heappop(self._queue)[2]
                    delivery.state = STATE_DELIVERING
                    return delivery

                wake_times = [self._queue[0][0]] if self._queue else []
                if self._reorder_release_at is not None:
                    wake_times.append(self._reorder_release_at)
                self._condition.wait(timeout=min(wake_times) - now if wake_times else None)
            return None

    def _run(self) -> None:
        while True:
            delivery = self._next_due()
            if delivery is None:
                return
            try:
                status, error, duration = self._send(delivery)
            except Exception as unexpected:  # noqa: BLE001 - the thread must survive any single delivery
                status, error, duration = None, f"{type(unexpected).__name__}: {unexpected}", 0.0
                self._logger.exception("webhook.send_crashed", event_id=delivery.event_id, delivery_id=delivery.id)
            self._record_attempt(delivery, status, error, duration)

    def _send(self, delivery: Delivery) -> tuple[int | None, str | None, float]:
        parts = urlsplit(self._url)
        connection_class = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        path = parts.path or "/"
        if parts.query:
            path = f"{path}?{parts.query}"
        # Each attempt is signed with the current time, so a retry that comes
        # minutes later still falls inside the receiver's tolerance window.
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "payment-provider-simulator",
            signatures.SIGNATURE_HEADER: signatures.sign(delivery.body, self._secret, int(time.time())),
        }

        started = time.monotonic()
        connection = connection_class(parts.hostname, parts.port, timeout=self._policy.request_timeout_seconds)
        try:
            connection.request("POST", path, body=delivery.body, headers=headers)
            response = connection.getresponse()
            response.read(64 * 1024)
            return response.status, None, time.monotonic() - started
        except (OSError, http.client.HTTPException) as error:
            return None, f"{type(error).__name__}: {error}"[:_MAX_ERROR_TEXT], time.monotonic() - started
        finally:
            connection.close()

    def _record_attempt(
        self, delivery: Delivery, status: int | None, error: str | None, duration: float
    ) -> None:
        with self._condition:
            if delivery.generation != self._generation:
                return
            delivery.attempts += 1
            delivery.last_status = status
            succeeded = status is not None and 200 <= status < 300
            if error is None and not succeeded:
                error = f"HTTP {status}"
            delivery.last_error = error
            log_fields = {
                "event_id": delivery.event_id,
                "event_type": delivery.event_type,
                "delivery_id": delivery.id,
                "payment_intent": delivery.payment_intent,
                "copy": delivery.copy,
                "attempt": delivery.attempts,
                "status": status,
                "duration_ms": round(duration * 1000, 1),
            }

            if succeeded:
                delivery.state = STATE_DELIVERED
                delivery.delivered_at = time.time()
                self._logger.info("webhook.delivered", **log_fields)
                return

            if delivery.attempts >= self._policy.max_attempts:
                delivery.state = STATE_FAILED
                self._logger.error("webhook.failed", error=delivery.last_error, **log_fields)
                return

            retry_in = self._policy.delay_after(delivery.attempts)
            delivery.due = self._clock() + retry_in
            self._push(delivery)
            self._logger.warning(
                "webhook.retry_scheduled", error=delivery.last_error, retry_in_ms=round(retry_in * 1000), **log_fields
            )
            self._condition.notify_all()
