"""The API error that handlers raise and the server renders as ``{"error": {...}}``."""
from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """Error response with an HTTP status, a Stripe-like error type and a stable code."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        error_type: str = "invalid_request_error",
        param: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.error_type = error_type
        self.param = param
        self.extra = extra or {}

    def body(self) -> dict[str, Any]:
        error = {"type": self.error_type, "code": self.code, "message": self.message, "param": self.param}
        error.update(self.extra)
        return {"error": error}


def invalid_parameter(param: str, message: str) -> ApiError:
    return ApiError(400, "parameter_invalid", message, param=param)


def missing_parameter(param: str) -> ApiError:
    return ApiError(400, "parameter_missing", f"missing required parameter {param!r}", param=param)
