"""Log formatting for every process: JSON lines (or plain text in debug runs), a correlation id on
each line, and no secrets.

- ``request_id`` is a context variable. whaleproject.middleware sets it per HTTP request; the Celery
  signals below carry it from the publishing process into the task (or use the task id), so one
  id follows a user action from the web process into the worker that finishes it.
- Redaction happens in the formatters, on the finished line, so it also covers tracebacks,
  exception messages and extra fields that a filter on ``record.msg`` would miss.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import json
import logging
import re
from collections.abc import Iterable
from urllib.parse import urlsplit

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "whalewatch_request_id", default=None
)

REDACTED = "[redacted]"
# Shorter configured values are not matched literally: redacting "admin" or "25" everywhere would
# make logs unreadable and protects nothing.
MIN_LITERAL_SECRET = 8

_SECRET_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # Standard Webhooks signing secrets.
    (re.compile(r"whsec_[A-Za-z0-9+/=_-]+"), "whsec_" + REDACTED),
    # JSON Web Tokens (access and refresh tokens): three base64url parts, the first two JSON.
    (re.compile(r"eyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"), "[jwt-redacted]"),
    # user:password@ in any URL (database, broker, SMTP).
    (re.compile(r"(?P<head>[a-zA-Z][a-zA-Z0-9+.-]*://[^:/@\s]*:)[^@\s/]+@"), r"\g<head>***@"),
    # Authorization headers that made it into a message.
    (re.compile(r"(?i)\b(?P<head>bearer\s+)[A-Za-z0-9._~+/=-]{8,}"), r"\g<head>" + REDACTED),
)

# Settings whose values must never appear in a log line, whatever their shape.
SECRET_SETTINGS = (
    "SECRET_KEY",
    "EMAIL_HOST_PASSWORD",
    "WHALE_METRICS_TOKEN",
)
URL_SETTINGS = ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "EMAIL_URL")


def configured_secrets() -> tuple[str, ...]:
    """The literal secret values of this process's settings (empty before Django is set up)."""
    try:
        from django.conf import settings

        if not settings.configured:
            return ()
        values = [getattr(settings, name, "") or "" for name in SECRET_SETTINGS]
        for name in URL_SETTINGS:
            url = getattr(settings, name, "") or ""
            try:
                values.append(urlsplit(url).password or "")
            except ValueError:
                continue
    except Exception:  # noqa: BLE001 - logging must work even if settings are broken
        return ()
    return tuple(sorted({v for v in values if len(v) >= MIN_LITERAL_SECRET}, key=len, reverse=True))


class Redactor:
    """Replace secrets in text; the literal-value regex is rebuilt only when the values change."""

    def __init__(self, secrets: Iterable[str] | None = None):
        self._fixed = tuple(secrets) if secrets is not None else None
        self._key: tuple[str, ...] | None = None
        self._literal: re.Pattern[str] | None = None

    def _literal_pattern(self) -> re.Pattern[str] | None:
        secrets = self._fixed if self._fixed is not None else configured_secrets()
        if secrets != self._key:
            self._key = secrets
            self._literal = re.compile("|".join(re.escape(s) for s in secrets)) if secrets else None
        return self._literal

    def __call__(self, text: str) -> str:
        literal = self._literal_pattern()
        if literal is not None:
            text = literal.sub(REDACTED, text)
        for pattern, replacement in _SECRET_PATTERNS:
            text = pattern.sub(replacement, text)
        return text


redact = Redactor()

# Attributes every LogRecord has; anything else on a record came from `extra=` and is emitted.
_STANDARD_ATTRS = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", (), None)).keys()
    | {"message", "asctime", "request_id", "taskName"}
)


class RequestIdFilter(logging.Filter):
    """Stamp each record with the current correlation id ("-" outside a request or task)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", None):
            record.request_id = request_id.get() or "-"
        return True


class PlainFormatter(logging.Formatter):
    """Readable one-line text for developers (DEBUG runs), redacted like the JSON lines."""

    def __init__(self, fmt: str | None = None, datefmt: str | None = None, style: str = "%"):
        super().__init__(
            fmt or "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s", datefmt, style
        )

    def format(self, record: logging.LogRecord) -> str:
        if not hasattr(record, "request_id"):
            record.request_id = request_id.get() or "-"
        return redact(super().format(record))


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request_id, extras, exception."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": dt.datetime.fromtimestamp(record.created, tz=dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None) or request_id.get() or "-",
            "process": record.processName,
            "pid": record.process,
        }
        for name, value in vars(record).items():
            if name not in _STANDARD_ATTRS and not name.startswith("_"):
                entry[name] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return redact(json.dumps(entry, default=str, ensure_ascii=False))


def logging_config(*, log_format: str, level: str) -> dict:
    """The LOGGING dict for settings: one console handler (stderr, read by journald)."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": "whaleproject.logs.RequestIdFilter"}},
        "formatters": {
            "plain": {"()": "whaleproject.logs.PlainFormatter"},
            "json": {"()": "whaleproject.logs.JsonFormatter"},
        },
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "formatter": log_format,
                "filters": ["request_id"],
            }
        },
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            "django.db.backends": {"level": "WARNING"},
            "daphne": {"level": "WARNING"},
        },
    }


# --- Celery: carry the correlation id into tasks ---------------------------------------------


def _connect_celery_signals() -> None:
    try:
        from celery import signals
    except ImportError:  # pragma: no cover - celery is a dependency; keep logging importable
        return

    @signals.before_task_publish.connect(weak=False)
    def _stamp_request_id(headers=None, **kwargs):
        current = request_id.get()
        if current and headers is not None:
            headers.setdefault("whalewatch_request_id", current)

    @signals.task_prerun.connect(weak=False)
    def _enter_task(task_id=None, task=None, **kwargs):
        carried = getattr(getattr(task, "request", None), "whalewatch_request_id", None)
        request_id.set(carried or task_id)

    @signals.task_postrun.connect(weak=False)
    def _leave_task(**kwargs):
        request_id.set(None)


# Connected when logging is configured (this module is named in LOGGING), i.e. in every process
# that runs Django: web, worker, beat and ingest.
_connect_celery_signals()
