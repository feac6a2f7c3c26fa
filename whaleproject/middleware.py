"""Request ids: every HTTP request gets one, every log line written for it carries it, and the
response returns it in X-Request-ID so a user's report can be matched to the server's logs."""

from __future__ import annotations

import re
import uuid

from asgiref.sync import iscoroutinefunction, markcoroutinefunction

from whaleproject.logs import request_id

HEADER = "X-Request-ID"
# An id from the client (nginx's $request_id, a load balancer's) is kept when it looks like one;
# anything else could inject text into log lines and is replaced.
_ACCEPTABLE_ID = re.compile(r"[A-Za-z0-9._-]{8,64}")


def incoming_or_new(value: str | None) -> str:
    if value and _ACCEPTABLE_ID.fullmatch(value):
        return value
    return uuid.uuid4().hex


class RequestIdMiddleware:
    sync_capable = True
    async_capable = True

    def __init__(self, get_response):
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request):
        if self.is_async:
            return self.__acall__(request)
        token = self._enter(request)
        try:
            response = self.get_response(request)
        finally:
            request_id.reset(token)
        response[HEADER] = request.request_id
        return response

    async def __acall__(self, request):
        token = self._enter(request)
        try:
            response = await self.get_response(request)
        finally:
            request_id.reset(token)
        response[HEADER] = request.request_id
        return response

    @staticmethod
    def _enter(request):
        request.request_id = incoming_or_new(request.headers.get(HEADER))
        return request_id.set(request.request_id)
