"""In-memory provider state: payment intents, refunds and faults behind one lock.

Nothing is persisted, so restarting the simulator forgets every intent, refund
and idempotency key. A real provider keeps them, which is why a client that
reconciles after a simulator restart sees `resource_missing` for old intents.

Every state change and the event it raises happen under the lock, so events
are queued in the order in which the changes happened.
"""
from __future__ import annotations

import copy
import random
import threading
import time
from collections.abc import Callable
from typing import Any

from payments.simulator.errors import ApiError, invalid_parameter, missing_parameter
from payments.simulator.faults import Faults
from payments.simulator.ids import new_id
from payments.simulator.webhooks import DeliveryOptions

STATUS_REQUIRES_CAPTURE = "requires_capture"
STATUS_SUCCEEDED = "succeeded"
STATUS_FAILED = "failed"

EVENT_CREATED = "payment_intent.created"
EVENT_SUCCEEDED = "payment_intent.succeeded"
EVENT_PAYMENT_FAILED = "payment_intent.payment_failed"
EVENT_REFUNDED = "charge.refunded"

MAX_AMOUNT = 99_999_999
MAX_REFERENCE_LENGTH = 255
MAX_LIST_LIMIT = 100

Publisher = Callable[[dict[str, Any], DeliveryOptions], None]


def _require_known_params(params: dict[str, Any], known: set[str]) -> None:
    for name in params:
        if name not in known:
            raise ApiError(
                400,
                "parameter_unknown",
                f"unknown parameter {name!r}; this endpoint accepts {', '.join(sorted(known))}",
                param=name,
            )


def _parse_amount(params: dict[str, Any], name: str = "amount") -> int:
    value = params[name]
    if not isinstance(value, int) or isinstance(value, bool):
        raise invalid_parameter(name, f"{name} must be an integer number of minor units, got {value!r}")
    if not 0 < value <= MAX_AMOUNT:
        raise invalid_parameter(name, f"{name} must be from 1 to {MAX_AMOUNT} minor units, got {value}")
    return value


def _not_found(kind: str, object_id: str, param: str | None = None) -> ApiError:
    return ApiError(404, "resource_missing", f"no such {kind}: {object_id!r}", param=param)


class ProviderState:
    """Intents, refunds and faults of one simulator process, guarded by a single lock."""

    def __init__(self, *, default_faults: Faults, rng: random.Random, publish: Publisher) -> None:
        self._lock = threading.Lock()
        self._default_faults = default_faults
        self._faults = copy.deepcopy(default_faults)
        self._rng = rng
        self._publish = publish
        self._intents: dict[str, dict[str, Any]] = {}
        self._refunds: dict[str, dict[str, Any]] = {}

    # --- faults ------------------------------------------------------------

    def faults_json(self) -> dict[str, Any]:
        with self._lock:
            return self._faults.to_json()

    def update_faults(self, changes: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            self._faults = self._faults.updated(changes)
            return self._faults.to_json()

    def draw_capture_outcome(self) -> str:
        with self._lock:
            return self._faults.draw_capture_outcome(self._rng)

    def draw_request_error(self) -> bool:
        with self._lock:
            return self._faults.draw_request_error(self._rng)

    def draw_latency_seconds(self) -> float:
        with self._lock:
            return self._faults.draw_latency_seconds(self._rng)

    def delay_seconds(self, name: str) -> float:
        """Return the fault delay `name` (a ``*_ms`` field) in seconds."""
        with self._lock:
            return getattr(self._faults, name) / 1000.0

    def reset(self) -> None:
        with self._lock:
            self._intents.clear()
            self._refunds.clear()
            self._faults = copy.deepcopy(self._default_faults)

    def counts(self) -> dict[str, int]:
        with self._lock:
            return {"intents": len(self._intents), "refunds": len(self._refunds)}

    # --- payment intents ----------------------------------------------------

    def create_intent(self, params: dict[str, Any]) -> dict[str, Any]:
        _require_known_params(params, {"amount", "currency", "merchant_reference"})
        for name in ("amount", "currency", "merchant_reference"):
            if name not in params:
                raise missing_parameter(name)
        amount = _parse_amount(params)
        currency = params["currency"]
        if not isinstance(currency, str) or len(currency) != 3 or not currency.isascii() or not currency.isalpha():
            raise invalid_parameter("currency", f"currency must be a three-letter ISO 4217 code, got {currency!r}")
        reference = params["merchant_reference"]
        if not isinstance(reference, str) or not reference.strip() or len(reference) > MAX_REFERENCE_LENGTH:
            raise invalid_parameter(
                "merchant_reference",
                f"merchant_reference must be a non-empty string of at most {MAX_REFERENCE_LENGTH} characters",
            )

        intent = {
            "id": new_id("pi"),
            "object": "payment_intent",
            "status": STATUS_REQUIRES_CAPTURE,
            "amount": amount,
            "currency": currency.upper(),
            "merchant_reference": reference,
            "amount_captured": 0,
            "amount_refunded": 0,
            "latest_charge": None,
            "last_payment_error": None,
            "created": int(time.time()),
        }
        with self._lock:
            self._intents[intent["id"]] = intent
            self._emit(EVENT_CREATED, intent)
            return copy.deepcopy(intent)

    def get_intent(self, intent_id: str) -> dict[str, Any]:
        with self._lock:
            intent = self._intents.get(intent_id)
            if intent is None:
                raise _not_found("payment intent", intent_id)
            return copy.deepcopy(intent)

    def list_intents(self, merchant_reference: str | None, limit: int) -> list[dict[str, Any]]:
        """Return the intents, newest first, optionally only those with `merchant_reference`."""
        with self._lock:
            matches = [
                intent
                for intent in self._intents.values()
                if merchant_reference is None or intent["merchant_reference"] == merchant_reference
            ]
            # dicts keep insertion order, which is creation order.
            return [copy.deepcopy(intent) for intent in reversed(matches)][:limit]

    def capture(self, intent_id: str, *, decline: bool) -> dict[str, Any]:
        """Capture the full amount, or fail the intent when `decline` is set.

        Raises ApiError 402 for a decline, 409 `already_captured` for an intent
        that succeeded before, and 409 `payment_intent_failed` for one that was
        declined before. The check and the change are one step under the lock,
        so two concurrent captures with different keys charge at most once.
        """
        with self._lock:
            intent = self._intents.get(intent_id)
            if intent is None:
                raise _not_found("payment intent", intent_id)

            if intent["status"] == STATUS_SUCCEEDED:
                raise ApiError(
                    409,
                    "already_captured",
                    f"payment intent {intent_id} was already captured by charge {intent['latest_charge']}",
                    extra={"payment_intent": copy.deepcopy(intent)},
                )
            if intent["status"] == STATUS_FAILED:
                raise ApiError(
                    409,
                    "payment_intent_failed",
                    f"payment intent {intent_id} failed with "
                    f"{intent['last_payment_error']['code']} and cannot be captured; create a new intent",
                    extra={"payment_intent": copy.deepcopy(intent)},
                )

            if decline:
                intent["status"] = STATUS_FAILED
                intent["last_payment_error"] = {
                    "code": "card_declined",
                    "decline_code": "generic_decline",
                    "message": "the card was declined",
                }
                self._emit(EVENT_PAYMENT_FAILED, intent)
                raise ApiError(
                    402,
                    "card_declined",
                    "the card was declined",
                    error_type="card_error",
                    extra={"decline_code": "generic_decline", "payment_intent": copy.deepcopy(intent)},
                )

            intent["status"] = STATUS_SUCCEEDED
            intent["amount_captured"] = intent["amount"]
            intent["latest_charge"] = new_id("ch")
            self._emit(EVENT_SUCCEEDED, intent)
            return copy.deepcopy(intent)

    # --- refunds ------------------------------------------------------------

    def create_refund(self, params: dict[str, Any]) -> dict[str, Any]:
        _require_known_params(params, {"payment_intent", "amount"})
        if "payment_intent" not in params:
            raise missing_parameter("payment_intent")
        intent_id = params["payment_intent"]
        if not isinstance(intent_id, str):
            raise invalid_parameter("payment_intent", f"payment_intent must be an id string, got {intent_id!r}")
        requested = _parse_amount(params) if "amount" in params else None

        with self._lock:
            intent = self._intents.get(intent_id)
            if intent is None:
                raise _not_found("payment intent", intent_id, param="payment_intent")
            if intent["status"] != STATUS_SUCCEEDED:
                raise ApiError(
                    400,
                    "payment_intent_not_captured",
                    f"payment intent {intent_id} has status {intent['status']}; only a succeeded intent can be refunded",
                    param="payment_intent",
                )
            refundable = intent["amount_captured"] - intent["amount_refunded"]
            if refundable == 0:
                raise ApiError(
                    400,
                    "charge_already_refunded",
                    f"payment intent {intent_id} is already refunded in full",
                    param="payment_intent",
                )
            amount = refundable if requested is None else requested
            if amount > refundable:
                raise ApiError(
                    400,
                    "amount_too_large",
                    f"refund amount {amount} is greater than the {refundable} still refundable on {intent_id}",
                    param="amount",
                )

            intent["amount_refunded"] += amount
            refund = {
                "id": new_id("re"),
                "object": "refund",
                "status": "succeeded",
                "amount": amount,
                "currency": intent["currency"],
                "payment_intent": intent_id,
                "charge": intent["latest_charge"],
                "created": int(time.time()),
            }
            self._refunds[refund["id"]] = refund
            self._emit(EVENT_REFUNDED, intent, extra={"refund": refund})
            return copy.deepcopy(refund)

    def get_refund(self, refund_id: str) -> dict[str, Any]:
        with self._lock:
            refund = self._refunds.get(refund_id)
            if refund is None:
                raise _not_found("refund", refund_id)
            return copy.deepcopy(refund)

    # --- events -------------------------------------------------------------

    def _emit(self, event_type: str, intent: dict[str, Any], extra: dict[str, Any] | None = None) -> None:
        """Queue an event with a snapshot of `intent`; the caller holds the lock."""
        data: dict[str, Any] = {"object": copy.deepcopy(intent)}
        if extra:
            data.update(copy.deepcopy(extra))
        event = {
            "id": new_id("evt"),
            "object": "event",
            "type": event_type,
            "created": int(time.time()),
            "data": data,
        }
        faults = self._faults
        options = DeliveryOptions(
            enabled=faults.webhooks_enabled,
            copies=faults.duplicate_webhooks,
            delay_seconds=faults.webhook_delay_ms / 1000.0,
            reorder=faults.reorder_webhooks,
            reorder_window_seconds=faults.reorder_window_ms / 1000.0,
        )
        self._publish(event, options)
