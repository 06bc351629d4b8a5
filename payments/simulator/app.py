"""Routing, authentication, idempotency and fault injection of the simulator's HTTP API.

`SimulatorApp.handle` turns a parsed `Request` into a `Response`; the HTTP
server in server.py only reads bytes, sleeps for `Response.delay_seconds` and
writes bytes. Faults apply to executions only: a replay of a saved response is
never slowed down by a capture fault or turned into an injected error.
"""
from __future__ import annotations

import hmac
import json
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote

from payments.simulator import faults as fault_names
from payments.simulator.errors import ApiError, invalid_parameter
from payments.simulator.idempotency import IdempotencyStore, SavedResponse, fingerprint_request, validate_key
from payments.simulator.ids import new_id
from payments.simulator.state import MAX_LIST_LIMIT, ProviderState
from payments.simulator.webhooks import WebhookDispatcher

IDEMPOTENCY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
REQUEST_ID_HEADER = "Request-Id"


@dataclass
class Request:
    method: str
    path: str
    query: str
    headers: Mapping[str, str]
    body: bytes


@dataclass
class Response:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)
    # Seconds the server waits before it writes the response (the timeout fault).
    delay_seconds: float = 0.0
    log_fields: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class _Route:
    method: str
    pattern: re.Pattern[str]
    name: str
    # /v1 routes get latency, idempotency and injected errors; /_control and /healthz do not.
    provider_api: bool
    authenticated: bool = True


_ROUTES = [
    _Route("POST", re.compile(r"^/v1/payment_intents$"), "create_intent", True),
    _Route("GET", re.compile(r"^/v1/payment_intents$"), "list_intents", True),
    _Route("GET", re.compile(r"^/v1/payment_intents/(?P<id>[^/]+)$"), "get_intent", True),
    _Route("POST", re.compile(r"^/v1/payment_intents/(?P<id>[^/]+)/capture$"), "capture", True),
    _Route("POST", re.compile(r"^/v1/refunds$"), "create_refund", True),
    _Route("GET", re.compile(r"^/v1/refunds/(?P<id>[^/]+)$"), "get_refund", True),
    _Route("GET", re.compile(r"^/_control/faults$"), "get_faults", False),
    _Route("POST", re.compile(r"^/_control/faults$"), "update_faults", False),
    _Route("POST", re.compile(r"^/_control/reset$"), "reset", False),
    _Route("GET", re.compile(r"^/_control/webhooks$"), "list_webhooks", False),
    _Route("GET", re.compile(r"^/healthz$"), "health", False, authenticated=False),
]


_VALIDATION_CODES = frozenset({"parameter_missing", "parameter_invalid", "parameter_unknown"})


def _internal_error(message: str) -> ApiError:
    return ApiError(500, "internal_error", message, error_type="api_error")


class SimulatorApp:
    """The provider's API: one instance per process, shared by all request threads."""

    def __init__(
        self,
        *,
        api_key: str,
        state: ProviderState,
        idempotency: IdempotencyStore,
        dispatcher: WebhookDispatcher,
        logger: Any,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not api_key:
            raise ValueError("API key must not be empty")
        self._api_key = api_key.encode("utf-8")
        self._state = state
        self._idempotency = idempotency
        self._dispatcher = dispatcher
        self._logger = logger
        self._sleep = sleep

    def handle(self, request: Request) -> Response:
        request_id = new_id("req")
        try:
            response = self._handle(request)
        except ApiError as error:
            response = Response(error.status, error.body(), log_fields={"error_code": error.code})
        response.headers[REQUEST_ID_HEADER] = request_id
        response.log_fields["request_id"] = request_id
        if error := response.body.get("error"):
            response.log_fields.setdefault("error_code", error.get("code"))
        if response.status == 401:
            response.headers["WWW-Authenticate"] = 'Bearer realm="payment-provider-simulator"'
        return response

    def _handle(self, request: Request) -> Response:
        route, match = self._match(request)
        if route.provider_api:
            self._sleep(self._state.draw_latency_seconds())
        if route.authenticated:
            self._authenticate(request)

        params = self._parse_body(request) if request.method == "POST" else {}
        path_id = unquote(match.group("id")) if "id" in match.groupdict() else None

        if not route.provider_api:
            return self._control(route.name, request, params)
        if request.method == "GET":
            if self._state.draw_request_error():
                return self._injected_error(fault_names.OUTCOME_ERROR)
            return self._read(route.name, request, path_id)
        return self._write(route.name, request, params, path_id)

    # --- request parsing ----------------------------------------------------

    def _match(self, request: Request) -> tuple[_Route, re.Match[str]]:
        allowed = []
        for route in _ROUTES:
            match = route.pattern.match(request.path)
            if match is None:
                continue
            if route.method == request.method:
                return route, match
            allowed.append(route.method)
        if allowed:
            raise ApiError(
                405,
                "method_not_allowed",
                f"{request.method} is not allowed on {request.path}; use {' or '.join(sorted(set(allowed)))}",
            )
        raise ApiError(404, "resource_missing", f"unrecognized request URL: {request.method} {request.path}")

    def _authenticate(self, request: Request) -> None:
        header = request.headers.get("Authorization")
        if not header:
            raise ApiError(
                401,
                "authentication_required",
                "missing API key; send it as 'Authorization: Bearer <api key>'",
                error_type="authentication_error",
            )
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode("utf-8"), self._api_key):
            raise ApiError(401, "invalid_api_key", "invalid API key", error_type="authentication_error")

    @staticmethod
    def _parse_body(request: Request) -> dict[str, Any]:
        content_type = request.headers.get("Content-Type", "application/json").split(";")[0].strip().lower()
        if request.body and content_type != "application/json":
            raise ApiError(415, "unsupported_media_type", f"request body must be application/json, got {content_type}")
        if not request.body.strip():
            return {}
        try:
            params = json.loads(request.body)
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ApiError(400, "invalid_json", f"request body is not valid JSON: {error}") from error
        if not isinstance(params, dict):
            raise ApiError(400, "invalid_json", "request body must be a JSON object")
        return params

    @staticmethod
    def _query(request: Request, known: set[str]) -> dict[str, str]:
        values = parse_qs(request.query, keep_blank_values=True)
        for name in values:
            if name not in known:
                raise ApiError(
                    400,
                    "parameter_unknown",
                    f"unknown query parameter {name!r}; this endpoint accepts {', '.join(sorted(known))}",
                    param=name,
                )
        return {name: items[-1] for name, items in values.items()}

    # --- provider API -------------------------------------------------------

    def _read(self, name: str, request: Request, path_id: str | None) -> Response:
        if name == "get_intent":
            intent = self._state.get_intent(path_id)
            return Response(200, intent, log_fields={"payment_intent": intent["id"]})
        if name == "get_refund":
            return Response(200, self._state.get_refund(path_id), log_fields={"refund": path_id})

        query = self._query(request, {"merchant_reference", "limit"})
        limit_text = query.get("limit", str(MAX_LIST_LIMIT))
        if not limit_text.isdigit() or not 1 <= int(limit_text) <= MAX_LIST_LIMIT:
            raise invalid_parameter("limit", f"limit must be an integer from 1 to {MAX_LIST_LIMIT}, got {limit_text!r}")
        reference = query.get("merchant_reference")
        intents = self._state.list_intents(reference, int(limit_text))
        body = {"object": "list", "data": intents, "has_more": False}
        return Response(200, body, log_fields={"merchant_reference": reference, "count": len(intents)})

    def _write(self, name: str, request: Request, params: dict[str, Any], path_id: str | None) -> Response:
        key = request.headers.get(IDEMPOTENCY_HEADER)
        log_fields: dict[str, Any] = {"idempotency_key": key}
        if path_id is not None:
            log_fields["payment_intent"] = path_id

        if key is not None:
            validate_key(key)
            saved = self._idempotency.begin(key, fingerprint_request(request.method, request.path, params))
            if saved is not None:
                return Response(
                    saved.status,
                    saved.body,
                    headers={REPLAYED_HEADER: "true", IDEMPOTENCY_HEADER: key},
                    log_fields={**log_fields, "replayed": True},
                )

        if name == "capture":
            outcome = self._state.draw_capture_outcome()
        elif self._state.draw_request_error():
            outcome = fault_names.OUTCOME_ERROR
        else:
            outcome = fault_names.OUTCOME_OK

        if outcome == fault_names.OUTCOME_ERROR:
            # Nothing was executed, so the key is released and a retry with it runs anew.
            if key is not None:
                self._idempotency.release(key)
            response = self._injected_error(outcome)
            response.log_fields.update(log_fields)
            return response

        try:
            response = self._execute(name, params, path_id, outcome)
        except Exception:
            if key is not None:
                self._idempotency.release(key)
            raise
        if key is not None:
            self._idempotency.complete(key, SavedResponse(response.status, response.body))
            response.headers[IDEMPOTENCY_HEADER] = key
        response.log_fields.update(log_fields)
        if outcome == fault_names.OUTCOME_OK or outcome == fault_names.OUTCOME_DECLINE:
            return response

        response.log_fields["fault"] = outcome
        if outcome == fault_names.OUTCOME_TIMEOUT:
            response.delay_seconds = self._state.delay_seconds("timeout_delay_ms")
            return response
        # error_after_capture: the effect is saved under the key, but this client
        # only sees a 500, so it cannot tell whether the capture happened.
        failed = self._injected_error(outcome)
        failed.log_fields.update(response.log_fields)
        failed.headers.update(response.headers)
        return failed

    def _execute(self, name: str, params: dict[str, Any], path_id: str | None, outcome: str) -> Response:
        try:
            if name == "create_intent":
                intent = self._state.create_intent(params)
                return Response(201, intent, log_fields={"payment_intent": intent["id"]})
            if name == "capture":
                self._require_empty(params)
                capture_delay = self._state.delay_seconds("capture_delay_ms")
                if capture_delay:
                    self._sleep(capture_delay)
                intent = self._state.capture(path_id, decline=outcome == fault_names.OUTCOME_DECLINE)
                return Response(200, intent, log_fields={"charge": intent["latest_charge"]})
            refund = self._state.create_refund(params)
            return Response(201, refund, log_fields={"refund": refund["id"], "payment_intent": refund["payment_intent"]})
        except ApiError as error:
            # Invalid parameters stop the request before it does anything, so the
            # caller releases the key. Business errors are a real result and are
            # saved and replayed like successes.
            if error.code in _VALIDATION_CODES:
                raise
            return Response(error.status, error.body(), log_fields={"error_code": error.code})

    @staticmethod
    def _require_empty(params: dict[str, Any]) -> None:
        for name in params:
            raise ApiError(
                400,
                "parameter_unknown",
                f"unknown parameter {name!r}; capture takes no parameters and always captures the full amount",
                param=name,
            )

    @staticmethod
    def _injected_error(outcome: str) -> Response:
        error = _internal_error("the payment provider had an internal error; retry with the same Idempotency-Key")
        return Response(500, error.body(), log_fields={"fault": outcome})

    # --- control API --------------------------------------------------------

    def _control(self, name: str, request: Request, params: dict[str, Any]) -> Response:
        if name == "health":
            return Response(200, {"status": "ok"})
        if name == "get_faults":
            return Response(200, self._state.faults_json())
        if name == "update_faults":
            faults = self._state.update_faults(params)
            self._logger.info("faults.updated", changed=sorted(params), faults=faults)
            return Response(200, faults)
        if name == "reset":
            self._state.reset()
            self._idempotency.clear()
            self._dispatcher.reset()
            self._logger.info("state.reset")
            return Response(200, {"status": "reset", "faults": self._state.faults_json()})

        query = self._query(request, {"payment_intent"})
        deliveries = self._dispatcher.deliveries(query.get("payment_intent"))
        return Response(200, {"object": "list", "data": deliveries})
