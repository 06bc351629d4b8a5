"""Small HTTP helpers shared by the API views of several apps."""
from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from rest_framework.request import Request
from rest_framework.response import Response

from commerce.errors import DomainError
from commerce.idempotency import HEADER, REPLAY_HEADER, IdempotentRequest, parse_key, request_fingerprint, run_idempotent

CART_TOKEN_HEADER = "X-Cart-Token"


def cart_token(request: Request) -> str | None:
    return request.headers.get(CART_TOKEN_HEADER) or None


def caller_scope(request: Request) -> str:
    """Name the caller for idempotency keys: the account, else a hash of the guest's cart token.

    Raises DomainError (401) when the request carries neither.
    """
    if request.user is not None and request.user.is_authenticated:
        return f"user:{request.user.pk}"
    token = cart_token(request)
    if token:
        # Hashed, so the stored scope is not itself a usable credential.
        return "cart:" + hashlib.sha256(token.encode()).hexdigest()[:32]
    raise DomainError(
        "not_authenticated",
        "Identify yourself: log in, or send the guest cart's token in the X-Cart-Token header.",
        status=401,
        field=CART_TOKEN_HEADER,
    )


def respond_idempotently(request: Request, effect: Callable[[], tuple[int, Any]]) -> Response:
    """Run `effect` under the request's Idempotency-Key and build the response, marking replays."""
    key = parse_key(request.headers.get(HEADER))
    scope = caller_scope(request)
    idempotent_request = IdempotentRequest(
        scope=scope,
        key=key,
        method=request.method,
        path=request.path,
        fingerprint=request_fingerprint(scope=scope, method=request.method, path=request.path, body=request.data),
    )
    outcome = run_idempotent(idempotent_request, effect)
    response = Response(outcome.body, status=outcome.status)
    response[HEADER] = key
    if outcome.replayed:
        response[REPLAY_HEADER] = "true"
    return response
