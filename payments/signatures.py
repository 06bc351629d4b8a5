"""Webhook signatures shared by the payment provider simulator and the webhook view.

The header has the form ``t=<unix seconds>,v1=<hex HMAC-SHA256>``, where the HMAC
key is the webhook secret and the signed message is ``"<t>.<raw body>"``. Signing
the timestamp together with the body lets the receiver reject a captured request
that is replayed later. A header may carry several ``v1`` values (one per active
secret while a secret is rotated), and it is valid when any of them matches.

This module must import only the standard library, because the simulator runs
as a separate process without Django.
"""
from __future__ import annotations

import hashlib
import hmac
import time

SIGNATURE_HEADER = "Provider-Signature"
SIGNATURE_SCHEME = "v1"
DEFAULT_TOLERANCE_SECONDS = 300


class InvalidSignature(Exception):
    """Webhook signature that failed verification; `reason` is a stable code for logs and metrics."""

    MISSING = "missing_header"
    MALFORMED = "malformed_header"
    OUTSIDE_TOLERANCE = "timestamp_outside_tolerance"
    MISMATCH = "signature_mismatch"

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def _compute(payload: bytes, secret: str, timestamp: int) -> str:
    signed_message = str(timestamp).encode("ascii") + b"." + payload
    return hmac.new(secret.encode("utf-8"), signed_message, hashlib.sha256).hexdigest()


def _require_bytes(payload: object) -> None:
    # A str payload usually means the body was decoded or re-serialized, and any
    # change in whitespace or key order breaks the HMAC, so the caller must pass
    # the raw request body.
    if not isinstance(payload, (bytes, bytearray)):
        raise TypeError(f"payload must be the raw body as bytes, got {type(payload).__name__}")


def sign(payload: bytes, secret: str, timestamp: int) -> str:
    """Return the signature header value for `payload` signed with `secret` at `timestamp`."""
    _require_bytes(payload)
    if not secret:
        raise ValueError("webhook secret must not be empty")
    return f"t={int(timestamp)},{SIGNATURE_SCHEME}={_compute(bytes(payload), secret, int(timestamp))}"


def _parse_header(header: str) -> tuple[int, list[str]]:
    timestamp: int | None = None
    signatures: list[str] = []
    for item in header.split(","):
        key, separator, value = item.strip().partition("=")
        if not separator or not value:
            raise InvalidSignature(
                InvalidSignature.MALFORMED,
                f"signature header item {item.strip()!r} is not of the form key=value",
            )
        if key == "t":
            if not value.isdigit():
                raise InvalidSignature(
                    InvalidSignature.MALFORMED, f"signature timestamp {value!r} is not an integer"
                )
            timestamp = int(value)
        elif key == SIGNATURE_SCHEME:
            signatures.append(value)
        # Other schemes are skipped so that a provider can add one without breaking receivers.

    if timestamp is None:
        raise InvalidSignature(InvalidSignature.MALFORMED, "signature header has no t= timestamp")
    if not signatures:
        raise InvalidSignature(
            InvalidSignature.MALFORMED, f"signature header has no {SIGNATURE_SCHEME}= signature"
        )
    return timestamp, signatures


def verify(
    payload: bytes,
    header: str | None,
    secret: str,
    tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS,
    now: float | None = None,
) -> None:
    """Raise InvalidSignature unless `header` signs the raw `payload` with `secret`.

    The timestamp must lie within `tolerance_seconds` of `now` (default: the
    current time) in either direction, which bounds how long a captured request
    can be replayed. Signatures are compared in constant time.
    """
    _require_bytes(payload)
    if not secret:
        raise ValueError("webhook secret must not be empty")
    if not header or not header.strip():
        raise InvalidSignature(InvalidSignature.MISSING, f"{SIGNATURE_HEADER} header is missing")

    timestamp, signatures = _parse_header(header)

    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance_seconds:
        raise InvalidSignature(
            InvalidSignature.OUTSIDE_TOLERANCE,
            f"signature timestamp {timestamp} is more than {tolerance_seconds} s from now ({int(current)})",
        )

    expected = _compute(bytes(payload), secret, timestamp)
    # Every candidate is compared, so the time taken does not reveal which one matched.
    matched = False
    for candidate in signatures:
        if hmac.compare_digest(expected.encode("ascii"), candidate.encode("ascii", "replace")):
            matched = True
    if not matched:
        raise InvalidSignature(
            InvalidSignature.MISMATCH, "no signature in the header matches the payload and secret"
        )
