"""The backend's side of the payment provider: an interface, its result types and errors.

`PaymentGateway` is what the payments services call. `SimulatorGateway`
implements it over HTTP against payments.simulator, whose API follows Stripe's
payment intents closely enough that a real adapter has the same shape.

Every call that changes money takes an idempotency key. After `GatewayTimeout`
or `GatewayUnavailable` the outcome is unknown, and the caller must retry with
the same key (the provider then replays the first result instead of charging
again) or reconcile with `get_intent` / `find_intents`. The gateway itself
never retries, because retries and their backoff belong to the Celery task.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import quote

import requests
import structlog
import urllib3
from requests.adapters import HTTPAdapter

logger = structlog.get_logger(__name__)

DEFAULT_PROVIDER_URL = "http://127.0.0.1:28100"
DEFAULT_API_KEY = "sk_local_demo"
DEFAULT_TIMEOUT_SECONDS = 3.0
MAX_IDEMPOTENCY_KEY_LENGTH = 255

STATUS_REQUIRES_CAPTURE = "requires_capture"
STATUS_SUCCEEDED = "succeeded"
STATUS_FAILED = "failed"


# --- results ---------------------------------------------------------------


@dataclass(frozen=True)
class ProviderIntent:
    """A payment intent as the provider last reported it; amounts are in minor units."""

    id: str
    status: str
    amount_minor: int
    currency: str
    merchant_reference: str
    amount_captured_minor: int
    amount_refunded_minor: int
    # The capture's charge id ("ch_..." in the provider's `latest_charge`), None until the intent succeeded.
    transaction_id: str | None
    # Decline code of a failed intent ("card_declined"), else None.
    decline_code: str | None
    created: int

    @property
    def is_succeeded(self) -> bool:
        return self.status == STATUS_SUCCEEDED

    @property
    def is_failed(self) -> bool:
        return self.status == STATUS_FAILED

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> ProviderIntent:
        error = body.get("last_payment_error") or {}
        return cls(
            id=body["id"],
            status=body["status"],
            amount_minor=body["amount"],
            currency=body["currency"].upper(),
            merchant_reference=body["merchant_reference"],
            amount_captured_minor=body["amount_captured"],
            amount_refunded_minor=body["amount_refunded"],
            transaction_id=body.get("latest_charge"),
            decline_code=error.get("code"),
            created=body["created"],
        )


@dataclass(frozen=True)
class CaptureResult:
    """A successful capture. `replayed` is True when the provider returned the saved result of an earlier call."""

    intent: ProviderIntent
    transaction_id: str
    amount_captured_minor: int
    replayed: bool

    @property
    def provider_intent_id(self) -> str:
        return self.intent.id


@dataclass(frozen=True)
class ProviderRefund:
    id: str
    status: str
    amount_minor: int
    currency: str
    provider_intent_id: str
    # Charge id of the capture that the refund returns money from.
    transaction_id: str | None
    created: int

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> ProviderRefund:
        return cls(
            id=body["id"],
            status=body["status"],
            amount_minor=body["amount"],
            currency=body["currency"].upper(),
            provider_intent_id=body["payment_intent"],
            transaction_id=body.get("charge"),
            created=body["created"],
        )


# --- errors ----------------------------------------------------------------


class GatewayError(Exception):
    """Base of the gateway errors; `code` is the provider's error code when there was one."""

    retryable = False

    def __init__(self, message: str, *, code: str | None = None, status_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.status_code = status_code


class PaymentDeclined(GatewayError):
    """The provider declined the capture; the intent is failed and will never capture."""

    def __init__(
        self,
        code: str,
        message: str = "the payment was declined",
        *,
        decline_code: str | None = None,
        intent: ProviderIntent | None = None,
    ) -> None:
        super().__init__(message, code=code, status_code=402)
        self.decline_code = decline_code
        self.intent = intent


class GatewayTimeout(GatewayError):
    """No response within the read timeout: the provider may or may not have acted.

    Retry with the same idempotency key, or reconcile with get_intent / find_intents.
    """

    retryable = True


class GatewayUnavailable(GatewayError):
    """The provider could not be reached or returned 5xx; retry later with the same key.

    `outcome_unknown` is False only when the request never reached the provider
    (connection refused, connect timeout). After a 5xx the provider may already
    have acted, so the caller must treat it like a timeout.
    """

    retryable = True

    def __init__(
        self,
        message: str,
        *,
        outcome_unknown: bool,
        code: str | None = None,
        status_code: int | None = None,
    ) -> None:
        super().__init__(message, code=code, status_code=status_code)
        self.outcome_unknown = outcome_unknown


class IdempotencyKeyInUse(GatewayUnavailable):
    """An earlier request with the same key is still running at the provider (409); retry later with that key."""

    def __init__(self, message: str) -> None:
        super().__init__(message, outcome_unknown=True, code="idempotency_key_in_use", status_code=409)


class GatewayRejected(GatewayError):
    """A 4xx that retrying will not fix: a bug on our side or a business rule of the provider.

    Codes the callers act on: ``already_captured`` (the intent succeeded
    earlier, so fetch it with get_intent instead of charging again),
    ``payment_intent_failed``, ``amount_too_large``, ``charge_already_refunded``,
    ``payment_intent_not_captured``, ``idempotency_key_reused``,
    ``resource_missing`` and ``invalid_api_key``.
    """

    def __init__(
        self, message: str, *, code: str | None, status_code: int, param: str | None = None
    ) -> None:
        super().__init__(message, code=code, status_code=status_code)
        self.param = param


# --- interface -------------------------------------------------------------


class PaymentGateway(Protocol):
    """Operations the backend needs from a payment provider; amounts are integer minor units."""

    def create_intent(
        self, *, amount_minor: int, currency: str, merchant_reference: str, idempotency_key: str
    ) -> ProviderIntent: ...

    def capture(self, *, provider_intent_id: str, idempotency_key: str) -> CaptureResult: ...

    def get_intent(self, *, provider_intent_id: str) -> ProviderIntent: ...

    def find_intents(self, *, merchant_reference: str) -> list[ProviderIntent]: ...

    def refund(self, *, provider_intent_id: str, amount_minor: int, idempotency_key: str) -> ProviderRefund: ...


# --- simulator adapter -----------------------------------------------------


@dataclass(frozen=True)
class _ProviderResponse:
    status_code: int
    body: dict[str, Any]
    replayed: bool


class SimulatorGateway:
    """PaymentGateway over HTTP against the payment provider simulator.

    Each instance owns a requests.Session. Reuse the instance within a task to
    keep the connection open, and create it after a worker forks, because a
    session must not be shared across processes.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
        *,
        connect_timeout_seconds: float | None = None,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url must be an http or https URL, got {base_url!r}")
        if not api_key:
            raise ValueError("api_key must not be empty")
        if timeout_seconds <= 0:
            raise ValueError(f"timeout_seconds must be positive, got {timeout_seconds}")
        self.base_url = base_url.rstrip("/")
        self.timeout_seconds = timeout_seconds
        self.connect_timeout_seconds = connect_timeout_seconds or timeout_seconds
        self._session = requests.Session()
        # Proxy variables and .netrc from the environment must not redirect the
        # calls or replace the Authorization header.
        self._session.trust_env = False
        # max_retries=0: a silent retry at this level could send a capture twice
        # without the task knowing, and retries belong to the task anyway.
        adapter = HTTPAdapter(max_retries=0)
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)
        self._session.headers.update(
            {"Authorization": f"Bearer {api_key}", "User-Agent": "commerce-backend-payments/0.1"}
        )

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> SimulatorGateway:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        # The API key is left out on purpose, so that a logged gateway does not leak it.
        return f"SimulatorGateway(base_url={self.base_url!r}, timeout_seconds={self.timeout_seconds})"

    # --- PaymentGateway ----------------------------------------------------

    def create_intent(
        self, *, amount_minor: int, currency: str, merchant_reference: str, idempotency_key: str
    ) -> ProviderIntent:
        if isinstance(amount_minor, bool) or not isinstance(amount_minor, int) or amount_minor <= 0:
            raise ValueError(f"amount_minor must be a positive int, got {amount_minor!r}")
        body = {"amount": amount_minor, "currency": currency, "merchant_reference": merchant_reference}
        response = self._request("POST", "/v1/payment_intents", json=body, idempotency_key=idempotency_key)
        return ProviderIntent.from_json(response.body)

    def capture(self, *, provider_intent_id: str, idempotency_key: str) -> CaptureResult:
        path = f"/v1/payment_intents/{_path_segment(provider_intent_id)}/capture"
        response = self._request("POST", path, json={}, idempotency_key=idempotency_key)
        intent = ProviderIntent.from_json(response.body)
        if intent.transaction_id is None:
            raise GatewayUnavailable(
                f"capture of {provider_intent_id} returned no charge id; reconcile with get_intent",
                outcome_unknown=True,
                code="invalid_response",
                status_code=response.status_code,
            )
        return CaptureResult(
            intent=intent,
            transaction_id=intent.transaction_id,
            amount_captured_minor=intent.amount_captured_minor,
            replayed=response.replayed,
        )

    def get_intent(self, *, provider_intent_id: str) -> ProviderIntent:
        response = self._request("GET", f"/v1/payment_intents/{_path_segment(provider_intent_id)}")
        return ProviderIntent.from_json(response.body)

    def find_intents(self, *, merchant_reference: str) -> list[ProviderIntent]:
        """Return the provider's intents for `merchant_reference`, newest first (at most 100)."""
        response = self._request(
            "GET", "/v1/payment_intents", params={"merchant_reference": merchant_reference, "limit": 100}
        )
        return [ProviderIntent.from_json(item) for item in response.body["data"]]

    def refund(self, *, provider_intent_id: str, amount_minor: int, idempotency_key: str) -> ProviderRefund:
        if isinstance(amount_minor, bool) or not isinstance(amount_minor, int) or amount_minor <= 0:
            raise ValueError(f"amount_minor must be a positive int, got {amount_minor!r}")
        body = {"payment_intent": provider_intent_id, "amount": amount_minor}
        response = self._request("POST", "/v1/refunds", json=body, idempotency_key=idempotency_key)
        return ProviderRefund.from_json(response.body)

    # --- transport ---------------------------------------------------------

    def _request(
        self,
        method: str,
        path: str,
        *,
        json: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> _ProviderResponse:
        headers = {}
        if method == "POST":
            _validate_idempotency_key(idempotency_key)
            headers["Idempotency-Key"] = idempotency_key
        log = logger.bind(method=method, path=path, idempotency_key=idempotency_key)

        started = time.monotonic()
        try:
            response = self._session.request(
                method,
                f"{self.base_url}{path}",
                json=json,
                params=params,
                headers=headers,
                timeout=(self.connect_timeout_seconds, self.timeout_seconds),
                allow_redirects=False,
            )
        except requests.ConnectTimeout as error:
            log.warning("payment_provider.unreachable", error=str(error))
            raise GatewayUnavailable(
                f"connecting to the payment provider at {self.base_url} timed out", outcome_unknown=False
            ) from error
        except requests.ReadTimeout as error:
            log.warning("payment_provider.timeout", timeout_seconds=self.timeout_seconds)
            raise GatewayTimeout(
                f"{method} {path} got no response within {self.timeout_seconds} s; "
                "the outcome is unknown, so retry with the same idempotency key or reconcile"
            ) from error
        except requests.ConnectionError as error:
            outcome_unknown = not _failed_before_sending(error)
            log.warning("payment_provider.unreachable", error=str(error), outcome_unknown=outcome_unknown)
            raise GatewayUnavailable(
                f"{method} {path} failed to reach the payment provider at {self.base_url}: {error}",
                outcome_unknown=outcome_unknown,
            ) from error
        except requests.RequestException as error:
            # For example a body cut off mid-stream: the request was sent, so the outcome is unknown.
            log.warning("payment_provider.failed", error=str(error))
            raise GatewayUnavailable(
                f"{method} {path} failed: {error}", outcome_unknown=True
            ) from error

        duration_ms = round((time.monotonic() - started) * 1000, 1)
        replayed = response.headers.get("Idempotent-Replayed") == "true"
        body = _json_body(response)
        log.info(
            "payment_provider.response",
            status_code=response.status_code,
            duration_ms=duration_ms,
            replayed=replayed,
            request_id=response.headers.get("Request-Id"),
        )

        if 200 <= response.status_code < 300 and body is not None:
            return _ProviderResponse(response.status_code, body, replayed)
        raise _error_for(method, path, response.status_code, body)


def _failed_before_sending(error: requests.ConnectionError) -> bool:
    """Return True when no connection was made, so the provider cannot have seen the request.

    requests raises ConnectionError both for a refused connection and for a
    connection that broke after the request was sent, such as a reset while
    waiting for the response. Only the first is safe to treat as "not sent".
    """
    reason = error.args[0] if error.args else None
    if isinstance(reason, urllib3.exceptions.MaxRetryError):
        reason = reason.reason
    return isinstance(reason, urllib3.exceptions.NewConnectionError)


def _path_segment(provider_intent_id: str) -> str:
    if not provider_intent_id:
        raise ValueError("provider_intent_id must not be empty")
    return quote(provider_intent_id, safe="")


def _validate_idempotency_key(key: str | None) -> None:
    if not key or len(key) > MAX_IDEMPOTENCY_KEY_LENGTH or not key.isprintable():
        raise ValueError(
            f"idempotency_key must be 1 to {MAX_IDEMPOTENCY_KEY_LENGTH} printable characters, got {key!r}"
        )


def _json_body(response: requests.Response) -> dict[str, Any] | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _error_for(method: str, path: str, status_code: int, body: dict[str, Any] | None) -> GatewayError:
    """Map a non-2xx response (or a 2xx without a JSON object) to the gateway error the caller handles."""
    error = (body or {}).get("error") or {}
    code = error.get("code")
    message = error.get("message") or f"{method} {path} returned HTTP {status_code}"

    if 200 <= status_code < 300:
        return GatewayUnavailable(
            f"{method} {path} returned HTTP {status_code} without a JSON object; reconcile before retrying",
            outcome_unknown=True,
            code="invalid_response",
            status_code=status_code,
        )
    if status_code == 402:
        intent_body = error.get("payment_intent")
        return PaymentDeclined(
            code or "card_declined",
            message,
            decline_code=error.get("decline_code"),
            intent=ProviderIntent.from_json(intent_body) if isinstance(intent_body, dict) else None,
        )
    if status_code == 409 and code == "idempotency_key_in_use":
        return IdempotencyKeyInUse(message)
    if status_code == 429 or status_code >= 500:
        return GatewayUnavailable(
            f"{method} {path} returned HTTP {status_code}: {message}",
            outcome_unknown=True,
            code=code,
            status_code=status_code,
        )
    return GatewayRejected(message, code=code, status_code=status_code, param=error.get("param"))


def get_gateway() -> SimulatorGateway:
    """Build the gateway from Django settings, read at call time so that tests can override them.

    Settings: PAYMENT_PROVIDER_URL (default http://127.0.0.1:28100),
    PAYMENT_PROVIDER_API_KEY (default sk_local_demo) and
    PAYMENT_PROVIDER_TIMEOUT_SECONDS (default 3).
    """
    from django.conf import settings

    return SimulatorGateway(
        base_url=getattr(settings, "PAYMENT_PROVIDER_URL", DEFAULT_PROVIDER_URL),
        api_key=getattr(settings, "PAYMENT_PROVIDER_API_KEY", DEFAULT_API_KEY),
        timeout_seconds=float(getattr(settings, "PAYMENT_PROVIDER_TIMEOUT_SECONDS", DEFAULT_TIMEOUT_SECONDS)),
    )
