"""Idempotency-Key records: the saved response of each key, replayed on a retry."""
from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from payments.simulator.errors import ApiError

KEY_TTL_SECONDS = 24 * 60 * 60
MAX_KEY_LENGTH = 255
_PURGE_INTERVAL_SECONDS = 60.0


@dataclass(frozen=True)
class SavedResponse:
    status: int
    body: dict[str, Any]


@dataclass
class _Record:
    fingerprint: str
    created: float
    response: SavedResponse | None = None  # None while the first request is still running


def fingerprint_request(method: str, path: str, body: dict[str, Any]) -> str:
    """Return a digest of the request; key order and whitespace in the JSON body do not change it."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(f"{method} {path}\n{canonical}".encode()).hexdigest()


def validate_key(key: str) -> None:
    if len(key) > MAX_KEY_LENGTH or not key.isprintable() or not key.strip():
        raise ApiError(
            400,
            "idempotency_key_invalid",
            f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} printable characters",
            error_type="idempotency_error",
        )


class IdempotencyStore:
    """Thread-safe map from Idempotency-Key to the request fingerprint and saved response."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._records: dict[str, _Record] = {}
        self._last_purge = clock()

    def begin(self, key: str, fingerprint: str) -> SavedResponse | None:
        """Claim `key` for a new execution, or return the saved response to replay.

        Raises ApiError 422 when the key was used with a different request and
        409 while the first request with the key is still running.
        """
        with self._lock:
            now = self._clock()
            self._purge_expired(now)
            record = self._records.get(key)
            if record is not None and now - record.created > KEY_TTL_SECONDS:
                del self._records[key]
                record = None

            if record is None:
                self._records[key] = _Record(fingerprint=fingerprint, created=now)
                return None
            if record.fingerprint != fingerprint:
                raise ApiError(
                    422,
                    "idempotency_key_reused",
                    "this Idempotency-Key was already used with a different request; "
                    "send a new key for a new request",
                    error_type="idempotency_error",
                )
            if record.response is None:
                raise ApiError(
                    409,
                    "idempotency_key_in_use",
                    "a request with this Idempotency-Key is still being processed; retry later with the same key",
                    error_type="idempotency_error",
                )
            return record.response

    def complete(self, key: str, response: SavedResponse) -> None:
        with self._lock:
            record = self._records.get(key)
            # The record is gone when a reset ran while the request executed.
            if record is not None:
                record.response = response

    def release(self, key: str) -> None:
        """Forget a key whose request was not executed, so that a retry with it runs anew."""
        with self._lock:
            record = self._records.get(key)
            if record is not None and record.response is None:
                del self._records[key]

    def clear(self) -> None:
        with self._lock:
            self._records.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._records)

    def _purge_expired(self, now: float) -> None:
        if now - self._last_purge < _PURGE_INTERVAL_SECONDS:
            return
        self._last_purge = now
        expired = [
            key
            for key, record in self._records.items()
            if record.response is not None and now - record.created > KEY_TTL_SECONDS
        ]
        for key in expired:
            del self._records[key]
