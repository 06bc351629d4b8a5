"""Map every API error to application/problem+json (RFC 9457) with a stable code.

Service functions raise `DomainError`; DRF's own exceptions and Django's 404
and 500 pages are translated here, in one place, so clients can rely on the
`code` member whatever layer failed.
"""
from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.db import InterfaceError, OperationalError
from django.http import Http404, HttpRequest, JsonResponse
from rest_framework import exceptions as drf_exceptions
from rest_framework.response import Response

from commerce.logging import get_logger

log = get_logger(__name__)

PROBLEM_CONTENT_TYPE = "application/problem+json"


class DomainError(Exception):
    """An error a client can act on: a stable code, an HTTP status and the field involved."""

    def __init__(
        self,
        code: str,
        detail: str,
        *,
        status: int = 400,
        field: str | None = None,
        hint: str | None = None,
        extra: dict[str, Any] | None = None,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.status = status
        self.field = field
        self.hint = hint
        self.extra = extra or {}
        self.retry_after = retry_after


class NotFoundError(DomainError):
    def __init__(self, detail: str, *, code: str = "not_found", field: str | None = None, **kwargs: Any):
        super().__init__(code, detail, status=404, field=field, **kwargs)


class ConflictError(DomainError):
    def __init__(self, code: str, detail: str, **kwargs: Any):
        super().__init__(code, detail, status=409, **kwargs)


class ServiceUnavailableError(DomainError):
    def __init__(self, code: str, detail: str, *, retry_after: int = 5, **kwargs: Any):
        super().__init__(code, detail, status=503, retry_after=retry_after, **kwargs)


TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    409: "Conflict",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


def problem_body(
    *,
    status: int,
    code: str,
    detail: str,
    instance: str | None = None,
    field: str | None = None,
    hint: str | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Build an RFC 9457 problem document; `code`, `field` and `hint` are extension members."""
    body: dict[str, Any] = {
        # A URN rather than a URL: the type is an identifier, not a page we serve.
        "type": f"urn:commerce:problem:{code}",
        "title": TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
        "code": code,
    }
    if instance:
        body["instance"] = instance
    if field:
        body["field"] = field
    if hint:
        body["hint"] = hint
    if extra:
        body.update(_money_as_strings(extra))
    return body


def _money_as_strings(value: Any) -> Any:
    """Render Decimals as strings: DRF's JSON encoder would turn them into floats and lose cents."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {key: _money_as_strings(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_money_as_strings(item) for item in value]
    return value


def _drf_problem(exc: drf_exceptions.APIException, path: str) -> tuple[dict[str, Any], dict[str, str]]:
    headers: dict[str, str] = {}
    status = exc.status_code

    if isinstance(exc, drf_exceptions.ValidationError):
        errors = _flatten_validation_errors(exc.detail)
        first = errors[0] if errors else {"field": None, "message": "Invalid input."}
        body = problem_body(
            status=400,
            code="validation_error",
            detail=f"{first['field']}: {first['message']}" if first["field"] else first["message"],
            instance=path,
            field=first["field"],
            hint="Correct the listed fields and send the request again.",
            extra={"errors": errors},
        )
        return body, headers

    if isinstance(exc, drf_exceptions.Throttled):
        if exc.wait is not None:
            headers["Retry-After"] = str(int(exc.wait) + 1)
        body = problem_body(
            status=429,
            code="rate_limited",
            detail=str(exc.detail),
            instance=path,
            hint="Wait for the number of seconds in Retry-After, then retry.",
        )
        return body, headers

    codes = {
        drf_exceptions.ParseError: ("malformed_request", "Send a valid JSON body."),
        drf_exceptions.AuthenticationFailed: ("authentication_failed", "Check the credentials."),
        drf_exceptions.NotAuthenticated: ("not_authenticated", "Log in or send credentials."),
        drf_exceptions.PermissionDenied: ("permission_denied", None),
        drf_exceptions.NotFound: ("not_found", None),
        drf_exceptions.MethodNotAllowed: ("method_not_allowed", "Use one of the methods in the Allow header."),
        drf_exceptions.NotAcceptable: ("not_acceptable", "Accept application/json."),
        drf_exceptions.UnsupportedMediaType: (
            "unsupported_media_type",
            "Send the body as application/json.",
        ),
    }
    code, hint = next(
        (value for cls, value in codes.items() if isinstance(exc, cls)),
        (getattr(exc, "default_code", "error"), None),
    )
    body = problem_body(status=status, code=code, detail=str(exc.detail), instance=path, hint=hint)
    return body, headers


def _flatten_validation_errors(detail: Any, prefix: str = "") -> list[dict[str, Any]]:
    """Turn DRF's nested error dict into a flat list of {field, message, code}."""
    errors: list[dict[str, Any]] = []
    if isinstance(detail, dict):
        for key, value in detail.items():
            name = key if key != "non_field_errors" else ""
            path = f"{prefix}.{name}" if prefix and name else (name or prefix)
            errors.extend(_flatten_validation_errors(value, path))
    elif isinstance(detail, list):
        for index, value in enumerate(detail):
            if isinstance(value, (dict, list)):
                errors.extend(_flatten_validation_errors(value, f"{prefix}[{index}]"))
            else:
                errors.extend(_flatten_validation_errors(value, prefix))
    else:
        errors.append(
            {
                "field": prefix or None,
                "message": str(detail),
                "code": getattr(detail, "code", "invalid"),
            }
        )
    return errors


def problem_exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    """DRF exception handler: every error leaves as problem+json."""
    request = context.get("request")
    path = request.path if request is not None else None
    headers: dict[str, str] = {}

    if isinstance(exc, DomainError):
        body = problem_body(
            status=exc.status,
            code=exc.code,
            detail=exc.detail,
            instance=path,
            field=exc.field,
            hint=exc.hint,
            extra=exc.extra,
        )
        if exc.retry_after is not None:
            headers["Retry-After"] = str(exc.retry_after)
    elif isinstance(exc, Http404):
        body = problem_body(status=404, code="not_found", detail=str(exc) or "Not found.", instance=path)
    elif isinstance(exc, DjangoPermissionDenied):
        body = problem_body(status=403, code="permission_denied", detail="Permission denied.", instance=path)
    elif isinstance(exc, drf_exceptions.APIException):
        body, headers = _drf_problem(exc, path)
        if isinstance(exc, drf_exceptions.MethodNotAllowed) and context.get("view") is not None:
            headers["Allow"] = ", ".join(context["view"].allowed_methods)
    elif isinstance(exc, (OperationalError, InterfaceError)):
        # PostgreSQL unreachable: the client can retry, and nothing was written.
        log.error("database_unavailable", path=path, error=str(exc))
        body = problem_body(
            status=503,
            code="database_unavailable",
            detail="The database is unavailable.",
            instance=path,
            hint="Retry after the number of seconds in Retry-After.",
        )
        headers["Retry-After"] = "5"
    else:
        log.error("unhandled_api_error", path=path, exc_info=exc)
        body = problem_body(
            status=500,
            code="internal_error",
            detail="An unexpected error occurred.",
            instance=path,
            hint="Retry later; if it persists, report the time of the request.",
        )
    return Response(body, status=body["status"], headers=headers, content_type=PROBLEM_CONTENT_TYPE)


def problem_response(request: HttpRequest, *, status: int, code: str, detail: str, **kwargs: Any) -> JsonResponse:
    body = problem_body(status=status, code=code, detail=detail, instance=request.path, **kwargs)
    return JsonResponse(body, status=status, content_type=PROBLEM_CONTENT_TYPE)


def _is_api_path(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


def handler404(request: HttpRequest, exception: Exception | None = None):
    """Django's 404 page: problem+json under /api/, Django's default elsewhere."""
    if _is_api_path(request):
        return problem_response(
            request,
            status=404,
            code="not_found",
            detail=f"No resource at {request.path}.",
            hint="Check the URL; the API lives under /api/v1/.",
        )
    from django.views.defaults import page_not_found

    return page_not_found(request, exception)


def handler500(request: HttpRequest):
    """Django's 500 page: problem+json under /api/, Django's default elsewhere."""
    if _is_api_path(request):
        return problem_response(
            request,
            status=500,
            code="internal_error",
            detail="An unexpected error occurred.",
            hint="Retry later; if it persists, report the time of the request.",
        )
    from django.views.defaults import server_error

    return server_error(request)


class DatabaseUnavailableMiddleware:
    """Return 503 problem+json when PostgreSQL is unreachable outside DRF views.

    DRF's handler covers its own views. This middleware covers the rest (Django
    views and the admin), so a database outage never surfaces as a bare 500.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest):
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception):
        if not isinstance(exception, (OperationalError, InterfaceError)) or not _is_api_path(request):
            return None
        log.error("database_unavailable", path=request.path, error=str(exception))
        response = problem_response(
            request,
            status=503,
            code="database_unavailable",
            detail="The database is unavailable.",
            hint="Retry after the number of seconds in Retry-After.",
        )
        response["Retry-After"] = "5"
        return response


__all__ = [
    "ConflictError",
    "DomainError",
    "NotFoundError",
    "ServiceUnavailableError",
    "handler404",
    "handler500",
    "problem_exception_handler",
]
