"""Idempotency-Key handling for POST endpoints with money or stock effects.

Semantics follow the IETF HTTPAPI draft "The Idempotency-Key HTTP Header
Field" and Stripe's practice:

- same key and same request fingerprint: replay the saved status and body,
  marked with the `Idempotent-Replayed: true` header;
- same key, different fingerprint: 422;
- same key while the first request still runs: 409, and the client retries.

The saved response is inserted in the same transaction as the effect. A
transaction-scoped advisory lock on (scope, key) shows a concurrent duplicate
that the first request is still running, without leaving an "in progress" row
behind if the process crashes: the lock dies with the transaction.

Only successful (2xx) outcomes are saved. An error means nothing was written,
so retrying with the same key runs the request again, which is safe.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from commerce.errors import DomainError
from commerce.logging import get_logger
from commerce.models import IdempotencyKey

log = get_logger(__name__)

HEADER = "Idempotency-Key"
REPLAY_HEADER = "Idempotent-Replayed"
MAX_KEY_LENGTH = 255


@dataclass(frozen=True)
class IdempotentRequest:
    scope: str
    key: str
    method: str
    path: str
    fingerprint: str


@dataclass(frozen=True)
class IdempotentOutcome:
    status: int
    body: Any
    replayed: bool


def request_fingerprint(*, scope: str, method: str, path: str, body: Any) -> str:
    """Hash what makes two requests "the same": caller, method, path and the JSON body with sorted keys."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    digest = hashlib.sha256()
    for part in (scope, method.upper(), path, canonical):
        digest.update(part.encode())
        digest.update(b"\x00")
    return digest.hexdigest()


def parse_key(raw: str | None) -> str:
    """Return the header's key, raising DomainError (400) when it is missing or unusable."""
    key = (raw or "").strip()
    # The draft sends the key as a structured-field string; accept it quoted or bare.
    if len(key) >= 2 and key[0] == key[-1] == '"':
        key = key[1:-1]
    if not key:
        raise DomainError(
            "idempotency_key_missing",
            f"The {HEADER} header is required on this endpoint.",
            field=HEADER,
            hint="Send a unique value (a UUID works) and reuse it when retrying the same request.",
        )
    if len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise DomainError(
            "idempotency_key_invalid",
            f"The {HEADER} header must be 1 to {MAX_KEY_LENGTH} printable characters.",
            field=HEADER,
        )
    return key


def _lock_id(scope: str, key: str) -> int:
    digest = hashlib.blake2b(f"{scope}\x00{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def run_idempotent(request: IdempotentRequest, effect: Callable[[], tuple[int, Any]]) -> IdempotentOutcome:
    """Run `effect` at most once per (scope, key), saving its response with it in one transaction.

    `effect` returns (status, JSON body) and must do its writes in the current
    transaction (it may open savepoints). DomainErrors raised by `effect` roll
    everything back and propagate, and nothing is saved for the key.
    """
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [_lock_id(request.scope, request.key)])
            acquired = cursor.fetchone()[0]
        if not acquired:
            log.info("idempotency_key_in_progress", idempotency_key=request.key, scope=request.scope)
            raise DomainError(
                "idempotency_key_in_progress",
                "A request with this Idempotency-Key is still being processed.",
                status=409,
                field=HEADER,
                hint="Retry the same request after a short wait; it will return the first request's result.",
                retry_after=1,
            )

        saved = IdempotencyKey.objects.filter(scope=request.scope, key=request.key).first()
        if saved is not None and saved.expires_at <= timezone.now():
            saved.delete()
            saved = None

        if saved is not None:
            if saved.fingerprint != request.fingerprint:
                log.info("idempotency_key_reused", idempotency_key=request.key, scope=request.scope)
                raise DomainError(
                    "idempotency_key_reused",
                    "This Idempotency-Key was already used for a different request.",
                    status=422,
                    field=HEADER,
                    hint="Use a new key for a new request.",
                    extra={"original_method": saved.method, "original_path": saved.path},
                )
            log.info("idempotency_key_replayed", idempotency_key=request.key, scope=request.scope)
            return IdempotentOutcome(status=saved.response_status, body=saved.response_body, replayed=True)

        status, body = effect()

        if 200 <= status < 300:
            IdempotencyKey.objects.create(
                scope=request.scope,
                key=request.key,
                fingerprint=request.fingerprint,
                method=request.method,
                path=request.path,
                response_status=status,
                response_body=body,
                expires_at=timezone.now() + timedelta(seconds=settings.IDEMPOTENCY_KEY_TTL_SECONDS),
            )
        return IdempotentOutcome(status=status, body=body, replayed=False)


def purge_expired_keys(*, now=None, batch_size: int = 5000) -> int:
    """Delete expired idempotency keys in batches and return how many were deleted."""
    now = now or timezone.now()
    deleted_total = 0
    while True:
        ids = list(IdempotencyKey.objects.filter(expires_at__lte=now).values_list("id", flat=True)[:batch_size])
        if not ids:
            return deleted_total
        deleted, _ = IdempotencyKey.objects.filter(id__in=ids).delete()
        deleted_total += deleted
