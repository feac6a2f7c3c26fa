"""Whale Watch settings: one module, every value from the environment.

deploy/whalewatch.env.example documents each variable. Parsing is strict (whaleproject/env.py):
a bad value stops start-up with a message naming the variable.
"""

from __future__ import annotations

import re
from datetime import timedelta
from ipaddress import ip_network
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from whaleproject.env import Env
from whaleproject.logs import logging_config

env = Env()

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env.str("WHALE_VAR_DIR", str(BASE_DIR / "var")))

DEBUG = env.bool("DEBUG", False)
if DEBUG:
    SECRET_KEY = env.str("SECRET_KEY", "insecure-development-key-do-not-use-in-production")
else:
    SECRET_KEY = env.str("SECRET_KEY")
    if len(SECRET_KEY) < 32:
        raise ImproperlyConfigured("SECRET_KEY must be at least 32 characters when DEBUG is off")

SITE_URL = env.url("SITE_URL", "http://127.0.0.1:8000", schemes=("http", "https")).rstrip("/")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", ["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", [SITE_URL])

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "channels",
    "rest_framework",
    "rest_framework_simplejwt.token_blacklist",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    # detection, then the apps above it. Their detection.signals receivers run in this order: the
    # dashboard push (display) before alert fan-out, so a slow fan-out never delays the live feed.
    "detection",
    "dashboard",
    "alerts",
]

MIDDLEWARE = [
    # First, so every log line of the request (even a crash in another middleware) carries its id.
    "whaleproject.middleware.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_ratelimit.middleware.RatelimitMiddleware",
]

ROOT_URLCONF = "whaleproject.urls"
ASGI_APPLICATION = "whaleproject.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "dashboard.context_processors.site",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------
# A bare machine starts on SQLite (WAL mode, see dashboard.apps); tests and production use
# PostgreSQL through DATABASE_URL.
DATABASE_URL = env.url(
    "DATABASE_URL",
    f"sqlite:///{VAR_DIR / 'whalewatch.sqlite3'}",
    schemes=("sqlite", "postgres", "postgresql", "pgsql"),
)
try:
    _database = dj_database_url.parse(
        DATABASE_URL, conn_max_age=env.int("DATABASE_CONN_MAX_AGE", 60, minimum=0)
    )
except ValueError as exc:
    raise ImproperlyConfigured(f"DATABASE_URL cannot be parsed: {exc}") from None
if _database["ENGINE"] == "django.db.backends.sqlite3":
    _database["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
    }
    _database["CONN_MAX_AGE"] = 0
else:
    _database["CONN_HEALTH_CHECKS"] = True
    _database.setdefault("OPTIONS", {})["application_name"] = env.str(
        "DATABASE_APPLICATION_NAME", "whalewatch"
    )
    _database["TEST"] = {"NAME": env.str("DATABASE_TEST_NAME", "test_whalewatch")}
DATABASES = {"default": _database}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: cache (rate limits), Celery broker, channel layer ---------------------------------
REDIS_URL = env.url("REDIS_URL", "redis://127.0.0.1:6379/0", schemes=("redis", "rediss", "unix"))
REDIS_KEY_PREFIX = env.str("REDIS_KEY_PREFIX", "whalewatch")

CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": REDIS_KEY_PREFIX,
        "OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 2},
    }
}

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            # channels-redis blocks 5 s in BZPOPMIN on an idle socket; redis-py 8's default
            # 5 s read timeout would fire first and drop every idle dashboard socket.
            "hosts": [{"address": REDIS_URL, "socket_timeout": 15}],
            "prefix": f"{REDIS_KEY_PREFIX}:asgi",
            "capacity": env.int("CHANNEL_CAPACITY", 1000, minimum=10),
            "expiry": 60,
        },
    }
}

CELERY_BROKER_URL = env.url("CELERY_BROKER_URL", REDIS_URL, schemes=("redis", "rediss", "unix"))
CELERY_RESULT_BACKEND = None
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ALWAYS_EAGER = False
CELERY_TASK_TIME_LIMIT = 300
CELERY_TASK_SOFT_TIME_LIMIT = 240
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = True
# Redis redelivers an unacknowledged task after this long: it is how a task held by a worker
# killed outright (SIGKILL, OOM) comes back, so shorter is better. It must outlast the longest
# countdown (300 s: alerts.delivery.MAX_COUNTDOWN and the tasks' retry_backoff_max) plus the
# hard time limit (300 s), or a waiting task runs twice (harmless: recording and deliveries are
# idempotent, but wasteful).
CELERY_VISIBILITY_TIMEOUT = env.int("CELERY_VISIBILITY_TIMEOUT", 900, minimum=5)
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": CELERY_VISIBILITY_TIMEOUT,
    # Sweep for tasks a dead worker held every 10 s (kombu's default scans only every 100 s).
    "unacked_restore_interval": 10,
    "unacked_restore_throttle": 1,
    "global_keyprefix": f"{REDIS_KEY_PREFIX}:celery:",
}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Keep Django's LOGGING (JSON lines, request ids, redaction) in workers instead of Celery's own.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
CELERY_BEAT_SCHEDULE: dict = {
    "beat-heartbeat": {"task": "whaleproject.tasks.beat_heartbeat", "schedule": 30.0},
    "check-accuracy": {"task": "detection.check_accuracy", "schedule": 300.0},
    "purge-history": {"task": "detection.purge_history", "schedule": 24 * 3600.0},
    # Blacklisted and outstanding JWTs past their expiry are dead weight in two tables.
    "flush-expired-tokens": {"task": "detection.flush_expired_tokens", "schedule": 24 * 3600.0},
    # The API's accuracy windows aggregate 90 days of predictions: computed here, not per request.
    "refresh-api-accuracy": {"task": "detection.refresh_api_accuracy", "schedule": 60.0},
    # Heals the stats rollups of the last hours after a hand edit of whale or prediction rows.
    "rebuild-recent-rollups": {"task": "detection.rebuild_recent_rollups", "schedule": 900.0},
}

# --- Auth and accounts ------------------------------------------------------------------------
AUTHENTICATION_BACKENDS = ["dashboard.auth.UsernameOrEmailBackend"]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Tests only (pyproject's pytest env sets it): MD5 makes each test user cost microseconds instead
# of PBKDF2's 0.35 s. Never set it in production: MD5 is no way to store a password.
if env.bool("WHALE_TEST_FAST_PASSWORD_HASHER", False):
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"
WHALE_SIGNUP_OPEN = env.bool("WHALE_SIGNUP_OPEN", True)
# Login attempts per IP and per username, django-ratelimit syntax ("N/period").
WHALE_LOGIN_RATE_IP = env.str("WHALE_LOGIN_RATE_IP", "20/m")
WHALE_LOGIN_RATE_USERNAME = env.str("WHALE_LOGIN_RATE_USERNAME", "5/m")
RATELIMIT_USE_CACHE = "default"
RATELIMIT_VIEW = "dashboard.views.ratelimited"
RATELIMIT_ENABLE = env.bool("RATELIMIT_ENABLE", True)

SESSION_COOKIE_AGE = env.int("SESSION_COOKIE_AGE", 14 * 24 * 3600, minimum=300)
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_HTTPONLY = False

# --- Security behind nginx --------------------------------------------------------------------
SECURE_COOKIES = env.bool("SECURE_COOKIES", not DEBUG and SITE_URL.startswith("https://"))
SESSION_COOKIE_SECURE = SECURE_COOKIES
CSRF_COOKIE_SECURE = SECURE_COOKIES
USE_X_FORWARDED_PROTO = env.bool("USE_X_FORWARDED_PROTO", False)
# Redirecting needs to know the original scheme; without the nginx header every request would look
# like plain HTTP and redirect forever, so the default is on only when that header is trusted.
SECURE_SSL_REDIRECT = env.bool(
    "SECURE_SSL_REDIRECT", not DEBUG and SITE_URL.startswith("https://") and USE_X_FORWARDED_PROTO
)
# Probes that call daphne directly over plain HTTP (health checks, Prometheus) are not redirected.
SECURE_REDIRECT_EXEMPT = [r"^api/v1/health/$", r"^metrics$"]
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", False)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
if USE_X_FORWARDED_PROTO:
    # Only safe when nginx is the sole way in and overwrites the header (deploy/nginx).
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
USE_X_FORWARDED_HOST = False

# --- Internationalisation ---------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

# --- Static files -----------------------------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = Path(env.str("STATIC_ROOT", str(VAR_DIR / "static")))
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

# --- Email ------------------------------------------------------------------------------------
EMAIL_BACKEND = env.str(
    "EMAIL_BACKEND",
    "django.core.mail.backends.console.EmailBackend"
    if DEBUG
    else "django.core.mail.backends.smtp.EmailBackend",
)
EMAIL_HOST = env.str("EMAIL_HOST", "127.0.0.1")
EMAIL_PORT = env.int("EMAIL_PORT", 25, minimum=1, maximum=65535)
EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env.str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = env.bool("EMAIL_USE_SSL", False)
if EMAIL_USE_TLS and EMAIL_USE_SSL:
    raise ImproperlyConfigured("EMAIL_USE_TLS and EMAIL_USE_SSL cannot both be true")
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", 10, minimum=1)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", "Whale Watch <whalewatch@localhost>")
SERVER_EMAIL = env.str("SERVER_EMAIL", DEFAULT_FROM_EMAIL)
ADMINS = [("Operator", addr) for addr in env.list("ADMINS", [])]

# --- Whale Watch ------------------------------------------------------------------------------
WHALE_SOURCE = env.str("WHALE_SOURCE", "wss://mempool.space/api/v1/ws")
WHALE_MIN_BTC = env.float("WHALE_MIN_BTC", 100.0, minimum=0.00000001, maximum=21_000_000)
WHALE_MEMORY_WARNING_MB = env.int("WHALE_MEMORY_WARNING_MB", 400, minimum=50)
WHALE_MEMORY_CRITICAL_MB = env.int("WHALE_MEMORY_CRITICAL_MB", 500, minimum=60)
WHALE_MEMORY_RECOVERY_MB = env.int("WHALE_MEMORY_RECOVERY_MB", 350, minimum=40)
if not WHALE_MEMORY_RECOVERY_MB < WHALE_MEMORY_WARNING_MB < WHALE_MEMORY_CRITICAL_MB:
    raise ImproperlyConfigured(
        "WHALE_MEMORY_RECOVERY_MB < WHALE_MEMORY_WARNING_MB < WHALE_MEMORY_CRITICAL_MB must hold"
    )
# Block projection (issue 14): Bitcoin Core's block assembly budget. Core 29+ defaults:
# -blockmaxweight 4,000,000 with -blockreservedweight 8,000 (before 29: 3,996,000 starting at
# 4,000, the same 3,992,000 WU for transactions); -blockmintxfee in sat per 1,000 vB (Core 30: 1).
WHALE_BLOCK_MAX_WEIGHT = env.int(
    "WHALE_BLOCK_MAX_WEIGHT", 4_000_000, minimum=100_000, maximum=4_000_000
)
WHALE_BLOCK_RESERVED_WEIGHT = env.int(
    "WHALE_BLOCK_RESERVED_WEIGHT", 8_000, minimum=2_000, maximum=1_000_000
)
if WHALE_BLOCK_RESERVED_WEIGHT >= WHALE_BLOCK_MAX_WEIGHT:
    raise ImproperlyConfigured("WHALE_BLOCK_RESERVED_WEIGHT must be below WHALE_BLOCK_MAX_WEIGHT")
WHALE_BLOCK_MIN_TX_FEE = env.int("WHALE_BLOCK_MIN_TX_FEE", 1, minimum=0, maximum=100_000_000)
WHALE_HEARTBEAT_STALE_SECONDS = env.int("WHALE_HEARTBEAT_STALE_SECONDS", 30, minimum=6)
WHALE_RETENTION_DAYS = env.int("WHALE_RETENTION_DAYS", 90, minimum=1)
WHALE_CLUSTERING = env.bool("WHALE_CLUSTERING", True)
WHALE_OUTBOUND_ALLOW_LOOPBACK = env.bool("WHALE_OUTBOUND_ALLOW_LOOPBACK", False)

# --- REST API ---------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework_simplejwt.authentication.JWTAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # The API speaks JSON only; form and multipart bodies are refused with 415.
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "whaleproject.api_errors.exception_handler",
}
# REST API rate limits, django-ratelimit syntax ("N/period"), counted in the Redis cache.
# Reads are per user; CSV exports (full scans) also count against their own, lower limit.
# Token endpoints are per client IP and per username (per token owner for refresh).
WHALE_API_READ_RATE = env.str("WHALE_API_READ_RATE", "300/m")
WHALE_API_EXPORT_RATE = env.str("WHALE_API_EXPORT_RATE", "20/h")
WHALE_API_TOKEN_RATE_IP = env.str("WHALE_API_TOKEN_RATE_IP", "30/m")
WHALE_API_TOKEN_RATE_USERNAME = env.str("WHALE_API_TOKEN_RATE_USERNAME", "10/m")
for _name in (
    "WHALE_API_READ_RATE",
    "WHALE_API_EXPORT_RATE",
    "WHALE_API_TOKEN_RATE_IP",
    "WHALE_API_TOKEN_RATE_USERNAME",
):
    if not re.fullmatch(r"[1-9]\d*/\d*[smhd]", globals()[_name]):
        raise ImproperlyConfigured(f"{_name} must be a rate like 300/m, 20/h or 5/10s")
SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=15),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=7),
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    "SIGNING_KEY": SECRET_KEY,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Whale Watch API",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Several models have a "status" or "kind" field; name each choice set after its model so
    # the schema is stable and `check --deploy` stays free of drf-spectacular collision warnings.
    "ENUM_NAME_OVERRIDES": {
        "WhaleStatusEnum": "detection.models.WhaleStatus",
        "EventKindEnum": "detection.models.EventKind",
        "FlowEnum": "detection.models.Flow",
        "DeliveryStatusEnum": "alerts.models.DeliveryStatus",
        "DeliveryKindEnum": "alerts.models.DeliveryKind",
    },
}

# --- Logging ----------------------------------------------------------------------------------
# JSON lines for the journal and log shippers; plain text on a developer's terminal. Both carry
# the request id and are redacted (whaleproject/logs.py).
LOG_LEVEL = env.str("LOG_LEVEL", "INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
LOG_FORMAT = env.str("LOG_FORMAT", "plain" if DEBUG else "json", choices=("json", "plain"))
LOGGING = logging_config(log_format=LOG_FORMAT, level=LOG_LEVEL)

# --- Metrics and health (whaleproject/metrics.py) ---------------------------------------------
# /metrics answers a bearer token, or clients in the allowlist (CIDRs); with neither set it
# refuses everyone.
WHALE_METRICS_TOKEN = env.str("WHALE_METRICS_TOKEN", "")
if WHALE_METRICS_TOKEN and len(WHALE_METRICS_TOKEN) < 16:
    raise ImproperlyConfigured("WHALE_METRICS_TOKEN must be at least 16 characters")
WHALE_METRICS_ALLOW = env.list("WHALE_METRICS_ALLOW", [])
try:
    _metrics_networks = [ip_network(cidr, strict=False) for cidr in WHALE_METRICS_ALLOW]
except ValueError as exc:
    raise ImproperlyConfigured(f"WHALE_METRICS_ALLOW has a bad network: {exc}") from None
# The ingest process serves its own figures here (0 turns it off). Loopback by default: the
# figures are not secret, but nothing outside the host needs to reach them without a proxy.
# Block scans (issue 13): every whale of every block, from the source's REST API, and the
# blocks missed while away scanned on reconnect, at most this many (older ones: a counted gap).
WHALE_BLOCK_SCAN = env.bool("WHALE_BLOCK_SCAN", True)
WHALE_CATCH_UP_MAX_BLOCKS = env.int("WHALE_CATCH_UP_MAX_BLOCKS", 12, minimum=0, maximum=1000)
# Whales still pending after this many days are closed as dropped (bitcoind's mempool expiry).
WHALE_PENDING_EXPIRY_DAYS = env.int("WHALE_PENDING_EXPIRY_DAYS", 14, minimum=1, maximum=365)
WHALE_INGEST_METRICS_PORT = env.int("WHALE_INGEST_METRICS_PORT", 9108, minimum=0, maximum=65535)
WHALE_INGEST_METRICS_ADDRESS = env.str("WHALE_INGEST_METRICS_ADDRESS", "127.0.0.1")
# /api/v1/health/ fails ("workers": backlog) when more tasks than this wait in the broker.
WHALE_QUEUE_BACKLOG_MAX = env.int("WHALE_QUEUE_BACKLOG_MAX", 1000, minimum=1)

# whitenoise serves straight from the source folders in debug runs, so no collectstatic rerun
# is needed after editing a file.
WHITENOISE_USE_FINDERS = DEBUG
WHITENOISE_AUTOREFRESH = DEBUG

# --- Alerts (alerts/) -------------------------------------------------------------------------
# The shared outbound HTTP client (alerts/http.py): seconds to connect, and for the whole call.
WHALE_OUTBOUND_CONNECT_TIMEOUT = env.float(
    "WHALE_OUTBOUND_CONNECT_TIMEOUT", 2.0, minimum=0.1, maximum=30
)
WHALE_OUTBOUND_TOTAL_TIMEOUT = env.float(
    "WHALE_OUTBOUND_TOTAL_TIMEOUT", 10.0, minimum=0.2, maximum=60
)
# A delivery still "sending" after this many seconds belongs to a dead worker; the sweeper sends
# it again. Keep it well above WHALE_OUTBOUND_TOTAL_TIMEOUT.
WHALE_DELIVERY_STRANDED_SECONDS = env.int("WHALE_DELIVERY_STRANDED_SECONDS", 120, minimum=1)
if WHALE_DELIVERY_STRANDED_SECONDS <= WHALE_OUTBOUND_TOTAL_TIMEOUT:
    raise ImproperlyConfigured(
        "WHALE_DELIVERY_STRANDED_SECONDS must be longer than WHALE_OUTBOUND_TOTAL_TIMEOUT"
    )
# --- Chat alert channels (alerts/transports/telegram.py, discord.py, slack.py) ---------------
# The Telegram bot that sends alerts and links chats (from @BotFather); empty = no Telegram.
TELEGRAM_BOT_TOKEN = env.str("TELEGRAM_BOT_TOKEN", "")
# The Bot API server: Telegram's, or a self-hosted telegram-bot-api (operator-trusted, so it is
# not put through the webhook SSRF guard).
TELEGRAM_API_URL = env.url(
    "TELEGRAM_API_URL", "https://api.telegram.org", schemes=("http", "https")
).rstrip("/")
# Telegram allows a bot about 30 messages a second in all; stay under it.
TELEGRAM_MESSAGES_PER_SECOND = env.int("TELEGRAM_MESSAGES_PER_SECOND", 25, minimum=1, maximum=30)
# getUpdates long-poll: seconds Telegram holds each request open while no message comes.
TELEGRAM_POLL_TIMEOUT = env.int("TELEGRAM_POLL_TIMEOUT", 25, minimum=0, maximum=50)
if TELEGRAM_BOT_TOKEN:
    CELERY_BEAT_SCHEDULE["alerts-telegram-updates"] = {
        "task": "alerts.poll_telegram",
        # Each run long-polls for up to ~a minute, so one run follows the other.
        "schedule": 60.0,
        "options": {"expires": 55},
    }
CELERY_BEAT_SCHEDULE["alerts-sweep"] = {
    "task": "alerts.sweep_deliveries",
    "schedule": 60.0,
    # A late run is dropped, not piled up: the next one does the same work.
    "options": {"expires": 55},
}

# Watchlists (issue 21): per-user limits, the extended-key gap limit and the CSV import bound.
WATCHLIST_MAX_ENTRIES = env.int("WATCHLIST_MAX_ENTRIES", 1000, minimum=1, maximum=100_000)
WATCHLIST_MAX_EXTENDED_KEYS = env.int("WATCHLIST_MAX_EXTENDED_KEYS", 20, minimum=0, maximum=1000)
WATCHLIST_GAP_LIMIT = env.int("WATCHLIST_GAP_LIMIT", 50, minimum=1, maximum=1000)
WATCHLIST_CSV_MAX_BYTES = env.int("WATCHLIST_CSV_MAX_BYTES", 1_000_000, minimum=1000)
# How often (seconds) the ingest checks the watchlist version for a change.
WATCHLIST_REFRESH_SECONDS = env.float("WATCHLIST_REFRESH_SECONDS", 2.0, minimum=0.1, maximum=60)
