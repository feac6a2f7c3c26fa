"""One error shape for the whole API: {"error": {"code", "message", "fields"?}}.

DRF exceptions come through `exception_handler` (REST_FRAMEWORK["EXCEPTION_HANDLER"]); requests
that never reach a DRF view (an unknown /api/ path, a crash) come through `not_found` and
`server_error`, which whaleproject.urls installs as handler404 and handler500.
"""

from __future__ import annotations

import math

from django.core.exceptions import PermissionDenied
from django.http import Http404, JsonResponse
from django.views import defaults
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

API_PREFIX = "/api/"


def _flatten(detail) -> str:
    if isinstance(detail, list):
        return " ".join(_flatten(d) for d in detail)
    if isinstance(detail, dict):
        return " ".join(f"{k}: {_flatten(v)}" for k, v in detail.items())
    return str(detail)


def _messages(value) -> list[str]:
    if isinstance(value, dict):
        return [f"{k}: {m}" for k, v in value.items() for m in _messages(v)]
    if isinstance(value, list):
        return [m for item in value for m in _messages(item)]
    return [str(value)]


def _validation_body(exc: exceptions.ValidationError) -> dict:
    fields = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
    return {
        "code": "invalid",
        "message": "Invalid input: " + ", ".join(sorted(fields)),
        "fields": {name: _messages(value) for name, value in fields.items()},
    }


def _plain_body(exc) -> dict:
    default_code = getattr(exc, "default_code", "error")
    detail = getattr(exc, "detail", str(exc))
    # simplejwt reports a bad access token as {"detail": ..., "code": ..., "messages": [...]};
    # the inner detail is the human sentence and carries the useful code.
    if isinstance(detail, dict) and "detail" in detail:
        inner = detail["detail"]
        return {"code": getattr(inner, "code", None) or default_code, "message": str(inner)}
    return {"code": getattr(detail, "code", None) or default_code, "message": _flatten(detail)}


def exception_handler(exc, context):
    # DRF answers Django's Http404 and PermissionDenied too; read them as the DRF exceptions it
    # turns them into, so their code is not_found / permission_denied rather than "error".
    if isinstance(exc, Http404):
        exc = exceptions.NotFound(*exc.args)
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied(*exc.args)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        body = _validation_body(exc)
    else:
        body = _plain_body(exc)
    if isinstance(exc, exceptions.Throttled):
        body["code"] = "throttled"
        response["Retry-After"] = str(max(1, math.ceil(exc.wait or 1)))
    response.data = {"error": body}
    return response


def error_response(
    code: str, message: str, http_status: int = status.HTTP_400_BAD_REQUEST, **extra
):
    body = {"code": code, "message": message, **extra}
    return Response({"error": body}, status=http_status)


def not_found(request, exception=None):
    """handler404: the JSON error under /api/, Django's page elsewhere."""
    if request.path.startswith(API_PREFIX):
        return JsonResponse(
            {"error": {"code": "not_found", "message": f"No API endpoint at {request.path}."}},
            status=404,
        )
    return defaults.page_not_found(request, exception)


def server_error(request):
    """handler500: the JSON error under /api/, Django's page elsewhere (the log has the trace)."""
    if request.path.startswith(API_PREFIX):
        return JsonResponse(
            {"error": {"code": "server_error", "message": "Internal server error."}}, status=500
        )
    return defaults.server_error(request)
