"""The API's JSON parser, with a size and nesting limit checked before parsing.

Python's json module recurses per nesting level: 100,000 nested arrays in a 200 KB body raised
RecursionError (a 500) on the token endpoint, before any throttle. The body is read once up to
the size limit and its depth counted in one pass that skips string contents.
"""

from __future__ import annotations

import io

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

_OPEN = frozenset(b"[{")
_CLOSE = frozenset(b"]}")
_QUOTE = ord('"')
_BACKSLASH = ord("\\")


def json_depth(body: bytes) -> int:
    """Deepest nesting of arrays and objects in `body`, not counting brackets inside strings."""
    depth = deepest = 0
    in_string = escaped = False
    for byte in body:
        if in_string:
            if escaped:
                escaped = False
            elif byte == _BACKSLASH:
                escaped = True
            elif byte == _QUOTE:
                in_string = False
        elif byte == _QUOTE:
            in_string = True
        elif byte in _OPEN:
            depth += 1
            deepest = max(deepest, depth)
        elif byte in _CLOSE:
            depth -= 1
    return deepest


class LimitedJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.WHALE_API_MAX_JSON_BYTES
        body = stream.read(limit + 1) if stream is not None else b""
        if len(body) > limit:
            raise ParseError(f"JSON body too large: at most {limit} bytes.")
        max_depth = settings.WHALE_API_MAX_JSON_DEPTH
        if json_depth(body) > max_depth:
            raise ParseError(f"JSON nested too deeply: at most {max_depth} levels.")
        return super().parse(io.BytesIO(body), media_type, parser_context)
