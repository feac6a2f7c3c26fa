"""Strict readers for environment variables.

Every setting comes from the environment. A value that does not parse stops start-up with an
ImproperlyConfigured that names the variable, because a portal that silently falls back to a
default (an alert floor of 0 BTC, say) is worse than one that refuses to start.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


class Env:
    def __init__(self, environ: Mapping[str, str] | None = None):
        self.environ = os.environ if environ is None else environ

    def _raw(self, name: str) -> str | None:
        value = self.environ.get(name)
        if value is None:
            file_path = self.environ.get(f"{name}_FILE")
            if file_path:
                try:
                    with open(file_path, encoding="utf-8") as fh:
                        return fh.read().strip()
                except OSError as exc:
                    raise ImproperlyConfigured(
                        f"{name}_FILE points at {file_path!r}, which cannot be read: {exc.strerror}"
                    ) from exc
            return None
        return value.strip()

    def is_set(self, name: str) -> bool:
        return self._raw(name) not in (None, "")

    def str(self, name: str, default: str | None = None, *, choices: tuple[str, ...] = ()) -> str:
        value = self._raw(name)
        if value in (None, ""):
            if default is None:
                raise ImproperlyConfigured(f"{name} is required but not set")
            return default
        if choices and value not in choices:
            raise ImproperlyConfigured(f"{name}={value!r} is not one of {', '.join(choices)}")
        return value

    def bool(self, name: str, default: bool) -> bool:
        value = self._raw(name)
        if value in (None, ""):
            return default
        lowered = value.lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise ImproperlyConfigured(f"{name}={value!r} is not a boolean (use true or false)")

    def int(
        self, name: str, default: int, *, minimum: int | None = None, maximum: int | None = None
    ) -> int:
        value = self._raw(name)
        if value in (None, ""):
            return default
        try:
            number = int(value)
        except ValueError:
            raise ImproperlyConfigured(f"{name}={value!r} is not a whole number") from None
        self._check_range(name, number, minimum, maximum)
        return number

    def float(
        self,
        name: str,
        default: float,
        *,
        minimum: float | None = None,
        maximum: float | None = None,
    ) -> float:
        value = self._raw(name)
        if value in (None, ""):
            return default
        try:
            number = float(value)
        except ValueError:
            raise ImproperlyConfigured(f"{name}={value!r} is not a number") from None
        if number != number or number in (float("inf"), float("-inf")):
            raise ImproperlyConfigured(f"{name}={value!r} is not a finite number")
        self._check_range(name, number, minimum, maximum)
        return number

    def list(self, name: str, default: list[str]) -> list[str]:
        value = self._raw(name)
        if value in (None, ""):
            return list(default)
        items = [item.strip() for item in value.split(",")]
        if any(not item for item in items):
            raise ImproperlyConfigured(f"{name}={value!r} has an empty item in its comma list")
        return items

    def url(self, name: str, default: str | None, *, schemes: tuple[str, ...]) -> str:
        value = self.str(name, default)
        parts = urlsplit(value)
        if parts.scheme not in schemes:
            raise ImproperlyConfigured(
                f"{name}={_redact(value)!r} must start with one of: "
                + ", ".join(f"{s}://" for s in schemes)
            )
        try:
            parts.port  # noqa: B018 - raises ValueError on a bad port
        except ValueError:
            raise ImproperlyConfigured(f"{name}={_redact(value)!r} has a bad port") from None
        return value

    @staticmethod
    def _check_range(name, number, minimum, maximum) -> None:
        if minimum is not None and number < minimum:
            raise ImproperlyConfigured(f"{name}={number} is below the minimum {minimum}")
        if maximum is not None and number > maximum:
            raise ImproperlyConfigured(f"{name}={number} is above the maximum {maximum}")


def _redact(url: str) -> str:
    """Hide a password in a URL so that an error message never carries a secret."""
    parts = urlsplit(url)
    if parts.password:
        return url.replace(f":{parts.password}@", ":***@", 1)
    return url
