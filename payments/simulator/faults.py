"""Fault switches of the simulator and the random draws that apply them.

`Faults` is mutable state owned by `ProviderState` and read or changed only
under its lock.
"""
from __future__ import annotations

import copy
import random
from dataclasses import dataclass, field
from typing import Any

from payments.simulator.errors import ApiError, invalid_parameter

OUTCOME_OK = "ok"
OUTCOME_DECLINE = "decline"
OUTCOME_TIMEOUT = "timeout"
OUTCOME_ERROR = "error"
OUTCOME_ERROR_AFTER_CAPTURE = "error_after_capture"
CAPTURE_OUTCOMES = (OUTCOME_OK, OUTCOME_DECLINE, OUTCOME_TIMEOUT, OUTCOME_ERROR, OUTCOME_ERROR_AFTER_CAPTURE)

REORDER_OFF = "off"
REORDER_REVERSE = "reverse"
REORDER_SHUFFLE = "shuffle"
REORDER_MODES = (REORDER_OFF, REORDER_REVERSE, REORDER_SHUFFLE)

MAX_DELAY_MS = 600_000
MAX_WEBHOOK_COPIES = 10
MAX_QUEUED_OUTCOMES = 1_000


@dataclass
class Faults:
    """Fault switches; the JSON form of each field is what `GET /_control/faults` returns."""

    latency_ms: tuple[int, int] = (20, 80)
    decline_rate: float = 0.0
    timeout_rate: float = 0.0
    timeout_delay_ms: int = 10_000
    error_rate: float = 0.0
    error_after_capture_rate: float = 0.0
    capture_delay_ms: int = 0
    # Deliveries per event: 1 is normal, 2 or more sends duplicates.
    duplicate_webhooks: int = 1
    reorder_webhooks: str = REORDER_OFF
    reorder_window_ms: int = 1_000
    webhook_delay_ms: int = 0
    webhooks_enabled: bool = True
    next_capture_outcomes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "latency_ms": list(self.latency_ms),
            "decline_rate": self.decline_rate,
            "timeout_rate": self.timeout_rate,
            "timeout_delay_ms": self.timeout_delay_ms,
            "error_rate": self.error_rate,
            "error_after_capture_rate": self.error_after_capture_rate,
            "capture_delay_ms": self.capture_delay_ms,
            "duplicate_webhooks": self.duplicate_webhooks,
            "reorder_webhooks": self.reorder_webhooks,
            "reorder_window_ms": self.reorder_window_ms,
            "webhook_delay_ms": self.webhook_delay_ms,
            "webhooks_enabled": self.webhooks_enabled,
            "next_capture_outcomes": list(self.next_capture_outcomes),
        }

    def updated(self, changes: dict[str, Any]) -> Faults:
        """Return a copy with `changes` applied, or raise ApiError naming the first invalid field.

        The caller swaps the copy in only when every field is valid, so a bad
        request leaves the running faults unchanged.
        """
        result = copy.deepcopy(self)
        for name, value in changes.items():
            parser = _FIELD_PARSERS.get(name)
            if parser is None:
                raise ApiError(
                    400,
                    "parameter_unknown",
                    f"unknown fault {name!r}; known faults: {', '.join(sorted(_FIELD_PARSERS))}",
                    param=name,
                )
            setattr(result, name, parser(name, value))
        return result

    def draw_capture_outcome(self, rng: random.Random) -> str:
        """Return the outcome for one capture execution: the queue first, then the rates."""
        if self.next_capture_outcomes:
            return self.next_capture_outcomes.pop(0)
        if _happens(self.error_rate, rng):
            return OUTCOME_ERROR
        if _happens(self.decline_rate, rng):
            return OUTCOME_DECLINE
        if _happens(self.timeout_rate, rng):
            return OUTCOME_TIMEOUT
        if _happens(self.error_after_capture_rate, rng):
            return OUTCOME_ERROR_AFTER_CAPTURE
        return OUTCOME_OK

    def draw_request_error(self, rng: random.Random) -> bool:
        return _happens(self.error_rate, rng)

    def draw_latency_seconds(self, rng: random.Random) -> float:
        low, high = self.latency_ms
        return rng.uniform(low, high) / 1000.0


def _happens(rate: float, rng: random.Random) -> bool:
    # A zero rate draws no number, so switching an unused fault on or off does
    # not shift the random sequence that a seeded run depends on.
    return rate > 0 and rng.random() < rate


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _parse_rate(name: str, value: Any) -> float:
    if not _is_number(value) or not 0 <= value <= 1:
        raise invalid_parameter(name, f"{name} must be a number from 0 to 1, got {value!r}")
    return float(value)


def _parse_delay_ms(name: str, value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_DELAY_MS:
        raise invalid_parameter(
            name, f"{name} must be an integer number of milliseconds from 0 to {MAX_DELAY_MS}, got {value!r}"
        )
    return value


def parse_latency_range(name: str, value: Any) -> tuple[int, int]:
    """Parse ``[min, max]`` milliseconds; raises ApiError when the range is invalid."""
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise invalid_parameter(name, f"{name} must be a list [min, max] of milliseconds, got {value!r}")
    low, high = (_parse_delay_ms(name, item) for item in value)
    if low > high:
        raise invalid_parameter(name, f"{name} minimum {low} is greater than maximum {high}")
    return low, high


def _parse_copies(name: str, value: Any) -> int:
    if isinstance(value, bool):
        return 2 if value else 1
    if not isinstance(value, int) or not 1 <= value <= MAX_WEBHOOK_COPIES:
        raise invalid_parameter(
            name, f"{name} must be true, false or a copy count from 1 to {MAX_WEBHOOK_COPIES}, got {value!r}"
        )
    return value


def _parse_reorder(name: str, value: Any) -> str:
    if isinstance(value, bool):
        return REORDER_REVERSE if value else REORDER_OFF
    if value not in REORDER_MODES:
        raise invalid_parameter(
            name, f"{name} must be true, false or one of {', '.join(REORDER_MODES)}, got {value!r}"
        )
    return value


def _parse_bool(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise invalid_parameter(name, f"{name} must be true or false, got {value!r}")
    return value


def _parse_outcomes(name: str, value: Any) -> list[str]:
    if not isinstance(value, list) or len(value) > MAX_QUEUED_OUTCOMES:
        raise invalid_parameter(
            name, f"{name} must be a list of at most {MAX_QUEUED_OUTCOMES} outcomes, got {value!r}"
        )
    for item in value:
        if item not in CAPTURE_OUTCOMES:
            raise invalid_parameter(
                name, f"{name} contains {item!r}; each outcome must be one of {', '.join(CAPTURE_OUTCOMES)}"
            )
    return list(value)


_FIELD_PARSERS = {
    "latency_ms": parse_latency_range,
    "decline_rate": _parse_rate,
    "timeout_rate": _parse_rate,
    "timeout_delay_ms": _parse_delay_ms,
    "error_rate": _parse_rate,
    "error_after_capture_rate": _parse_rate,
    "capture_delay_ms": _parse_delay_ms,
    "duplicate_webhooks": _parse_copies,
    "reorder_webhooks": _parse_reorder,
    "reorder_window_ms": _parse_delay_ms,
    "webhook_delay_ms": _parse_delay_ms,
    "webhooks_enabled": _parse_bool,
    "next_capture_outcomes": _parse_outcomes,
}
