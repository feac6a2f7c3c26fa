"""One error shape for the whole API: {"error": {"code", "message", "fields"?}}."""

from __future__ import annotations

from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler


def _flatten(detail) -> str:
    if isinstance(detail, list):
        return " ".join(_flatten(d) for d in detail)
    if isinstance(detail, dict):
        return " ".join(f"{k}: {_flatten(v)}" for k, v in detail.items())
    return str(detail)


def exception_handler(exc, context):
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    code = getattr(exc, "default_code", "error")
    if isinstance(exc, exceptions.ValidationError):
        fields = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
        body = {
            "code": "invalid",
            "message": "Invalid input: " + ", ".join(sorted(fields)),
            "fields": {
                k: [str(m) for m in (v if isinstance(v, list) else [v])] for k, v in fields.items()
            },
        }
    else:
        detail = getattr(exc, "detail", str(exc))
        body = {"code": getattr(detail, "code", code) or code, "message": _flatten(detail)}
    if isinstance(exc, exceptions.Throttled) and exc.wait is not None:
        response["Retry-After"] = str(int(exc.wait) + 1)
    response.data = {"error": body}
    return response


def error_response(
    code: str, message: str, http_status: int = status.HTTP_400_BAD_REQUEST, **extra
):
    body = {"code": code, "message": message, **extra}
    return Response({"error": body}, status=http_status)
