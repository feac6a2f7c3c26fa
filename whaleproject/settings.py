"""Whale Watch settings: one module, every value from the environment.

deploy/whalewatch.env.example documents each variable. Parsing is strict (whaleproject/env.py):
a bad value stops start-up with a message naming the variable.
"""

from __future__ import annotations

import hashlib
import hmac
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

# Production fails closed: without DEBUG, SITE_URL is required and must be https (it decides
# secure cookies, HSTS and the SSL redirect), unless plain http is asked for explicitly.
ALLOW_INSECURE_HTTP = env.bool("ALLOW_INSECURE_HTTP", False)
SITE_URL = env.url(
    "SITE_URL", "http://127.0.0.1:8000" if DEBUG else None, schemes=("http", "https")
).rstrip("/")
if not DEBUG and not SITE_URL.startswith("https://") and not ALLOW_INSECURE_HTTP:
    raise ImproperlyConfigured(
        "SITE_URL must be an https:// URL when DEBUG is off "
        "(set ALLOW_INSECURE_HTTP=true to serve plain http on purpose)"
    )
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
    # Content-Security-Policy (no inline script) and Permissions-Policy on every response.
    "whaleproject.security_headers.SecurityHeadersMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # After authentication: the one throttling policy for the HTML forms (whaleproject/throttling).
    "whaleproject.throttling.ThrottleMiddleware",
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
# The longest any task may run (prefork kills it after the hard limit). Sends are bounded by
# WHALE_OUTBOUND_TOTAL_TIMEOUT, recordings take milliseconds; the hourly purge works in batches
# and stops at the soft limit, the next run going on where it stopped.
CELERY_TASK_TIME_LIMIT = 15
CELERY_TASK_SOFT_TIME_LIMIT = 12
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = True
# Redis hands an unacknowledged task to another worker after this long: it is how a task held by
# a worker killed outright (SIGKILL, OOM) comes back, so it is short: above the hard time limit
# with room for a prefetched task's wait (a task still running when it is handed out again would
# run twice: harmless, recordings and sends are idempotent, but wasteful). That is safe only because no task waits on a worker
# unacknowledged: retries and delayed sends are rows in the database (alerts.sweeper), never
# Celery countdowns or ETAs, which the broker would hold unacknowledged until due.
# docs/RELIABILITY.md, "A worker dies".
CELERY_VISIBILITY_TIMEOUT = env.int("CELERY_VISIBILITY_TIMEOUT", 30, minimum=5)
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": CELERY_VISIBILITY_TIMEOUT,
    # Every worker looks for tasks a dead worker held every 2 s (kombu scans only every
    # interval x throttle = 100 s by default), so one comes back at most 2 s after its timeout.
    "unacked_restore_interval": 2,
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
    # Hourly, so a backlog is worked off in slices within a task's time limit.
    "purge-history": {"task": "detection.purge_history", "schedule": 3600.0},
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
RATELIMIT_VIEW = "whaleproject.throttling.ratelimited"
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
# Fiat values (issue 15): a price older than this when a whale is detected gives no fiat value.
WHALE_PRICE_MAX_AGE_SECONDS = env.int("WHALE_PRICE_MAX_AGE_SECONDS", 3600, minimum=1)

# --- REST API ---------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # simplejwt's JWTAuthentication plus the per-user token generation (revocation).
        "dashboard.api_auth.GenerationJWTAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # The API speaks JSON only; form and multipart bodies are refused with 415.
    # Size and nesting are limited before parsing (whaleproject/api_parsers.py).
    "DEFAULT_PARSER_CLASSES": ["whaleproject.api_parsers.LimitedJSONParser"],
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
# Security hardening (issue 16): the other ways in, at the same policy (whaleproject/throttling).
WHALE_PASSWORD_RESET_RATE_IP = env.str("WHALE_PASSWORD_RESET_RATE_IP", "10/h")
WHALE_PASSWORD_RESET_RATE_ACCOUNT = env.str("WHALE_PASSWORD_RESET_RATE_ACCOUNT", "3/h")
WHALE_SIGNUP_RATE_IP = env.str("WHALE_SIGNUP_RATE_IP", "5/h")
WHALE_EMAIL_CHANGE_RATE = env.str("WHALE_EMAIL_CHANGE_RATE", "5/h")
# Webhook test sends and redeliveries, per user, pages and API together.
WHALE_SEND_RATE = env.str("WHALE_SEND_RATE", "10/m")
for _name in (
    "WHALE_LOGIN_RATE_IP",
    "WHALE_LOGIN_RATE_USERNAME",
    "WHALE_API_READ_RATE",
    "WHALE_API_EXPORT_RATE",
    "WHALE_API_TOKEN_RATE_IP",
    "WHALE_API_TOKEN_RATE_USERNAME",
    "WHALE_PASSWORD_RESET_RATE_IP",
    "WHALE_PASSWORD_RESET_RATE_ACCOUNT",
    "WHALE_SIGNUP_RATE_IP",
    "WHALE_EMAIL_CHANGE_RATE",
    "WHALE_SEND_RATE",
):
    if not re.fullmatch(r"[1-9]\d*/\d*[smhd]", globals()[_name]):
        raise ImproperlyConfigured(f"{_name} must be a rate like 300/m, 20/h or 5/10s")
# Security hardening (issue 16): JSON bodies larger or deeper than this are a 400, unparsed.
WHALE_API_MAX_JSON_BYTES = env.int("WHALE_API_MAX_JSON_BYTES", 65536, minimum=1024)
WHALE_API_MAX_JSON_DEPTH = env.int("WHALE_API_MAX_JSON_DEPTH", 32, minimum=4, maximum=1000)
# JWTs are signed with their own key, so rotating it logs every API client out without touching
# sessions or signed links. Default: derived from SECRET_KEY (HMAC, one-way).
JWT_SIGNING_KEY = env.str(
    "JWT_SIGNING_KEY",
    hmac.new(SECRET_KEY.encode(), b"whalewatch-jwt-signing-key", hashlib.sha256).hexdigest(),
)
if len(JWT_SIGNING_KEY) < 32:
    raise ImproperlyConfigured("JWT_SIGNING_KEY must be at least 32 characters")
# Lifetimes (docs/API.md, docs/SECURITY.md): access 15 minutes, refresh 7 days and single-use.
SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=15),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=7),
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    "SIGNING_KEY": JWT_SIGNING_KEY,
    "TOKEN_OBTAIN_SERIALIZER": "dashboard.api_auth.GenerationTokenObtainSerializer",
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
# Parsed here, once: the setting holds ip_network objects, not strings.
try:
    WHALE_METRICS_ALLOW = tuple(
        ip_network(cidr, strict=False) for cidr in env.list("WHALE_METRICS_ALLOW", [])
    )
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
# Security hardening (issue 16): a session's dashboard socket re-checks the session this often
# and closes once it is logged out.
WHALE_SOCKET_SESSION_CHECK_SECONDS = env.float(
    "WHALE_SOCKET_SESSION_CHECK_SECONDS", 5.0, minimum=0.1, maximum=300
)
# Security hardening (issue 16): anonymous health callers share one result this many seconds.
WHALE_HEALTH_CACHE_SECONDS = env.float("WHALE_HEALTH_CACHE_SECONDS", 5.0, minimum=0, maximum=60)

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
# A delivery still "sending" after this many seconds belongs to a dead worker, and one queued this
# long ago but never taken was lost with one; the sweeper sends it again. Longer than a task may
# live (CELERY_TASK_TIME_LIMIT), so a slow send still in progress is never sent a second time
# alongside it.
WHALE_DELIVERY_STRANDED_SECONDS = env.int("WHALE_DELIVERY_STRANDED_SECONDS", 20, minimum=1)
if WHALE_DELIVERY_STRANDED_SECONDS <= WHALE_OUTBOUND_TOTAL_TIMEOUT:
    raise ImproperlyConfigured(
        "WHALE_DELIVERY_STRANDED_SECONDS must be longer than WHALE_OUTBOUND_TOTAL_TIMEOUT"
    )
if WHALE_DELIVERY_STRANDED_SECONDS <= CELERY_TASK_TIME_LIMIT:
    raise ImproperlyConfigured(
        "WHALE_DELIVERY_STRANDED_SECONDS must be longer than a task's hard time limit "
        f"({CELERY_TASK_TIME_LIMIT} s)"
    )
if CELERY_TASK_SOFT_TIME_LIMIT <= WHALE_OUTBOUND_TOTAL_TIMEOUT:
    raise ImproperlyConfigured(
        "WHALE_OUTBOUND_TOTAL_TIMEOUT must be shorter than a task's time limit "
        f"({CELERY_TASK_SOFT_TIME_LIMIT} s)"
    )
# Seconds between alert sweeps (beat): due retries and released holds are queued, and stranded
# sends resent, this often. Retries wait in the database only, so this is their precision.
WHALE_ALERT_SWEEP_SECONDS = env.float("WHALE_ALERT_SWEEP_SECONDS", 5.0, minimum=1, maximum=60)
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
# getUpdates long-poll: seconds Telegram holds each request open while no message comes. Each
# beat run of alerts.poll_telegram polls for 10 s (within a task's 12 s soft time limit), and no
# long-poll outlives the run, so more than 10 would not be used.
TELEGRAM_POLL_TIMEOUT = env.int("TELEGRAM_POLL_TIMEOUT", 8, minimum=0, maximum=10)
if TELEGRAM_BOT_TOKEN:
    CELERY_BEAT_SCHEDULE["alerts-telegram-updates"] = {
        "task": "alerts.poll_telegram",
        # Each run long-polls for about 10 s (alerts.tasks), so one run follows the other.
        "schedule": 10.0,
        "options": {"expires": 10},
    }
CELERY_BEAT_SCHEDULE["alerts-sweep"] = {
    "task": "alerts.sweep_deliveries",
    "schedule": WHALE_ALERT_SWEEP_SECONDS,
    # A late run is dropped, not piled up: the next one does the same work.
    "options": {"expires": WHALE_ALERT_SWEEP_SECONDS},
}

# --- Crash recovery: events owned until recorded (detection/pending_events.py) ----------------
# The ingest publishes an event again when no worker has recorded it this many seconds after it
# was published (a worker killed holding it, a lost message, PostgreSQL away)...
WHALE_EVENT_RECORD_DEADLINE_SECONDS = env.float(
    "WHALE_EVENT_RECORD_DEADLINE_SECONDS", 10.0, minimum=1, maximum=300
)
# ...and looks for such events this often.
WHALE_EVENT_SWEEP_SECONDS = env.float("WHALE_EVENT_SWEEP_SECONDS", 2.0, minimum=0.2, maximum=60)
# Watchlists (issue 21): per-user limits, the extended-key gap limit and the CSV import bound.
WATCHLIST_MAX_ENTRIES = env.int("WATCHLIST_MAX_ENTRIES", 1000, minimum=1, maximum=100_000)
WATCHLIST_MAX_EXTENDED_KEYS = env.int("WATCHLIST_MAX_EXTENDED_KEYS", 20, minimum=0, maximum=1000)
WATCHLIST_GAP_LIMIT = env.int("WATCHLIST_GAP_LIMIT", 50, minimum=1, maximum=1000)
WATCHLIST_CSV_MAX_BYTES = env.int("WATCHLIST_CSV_MAX_BYTES", 1_000_000, minimum=1000)
# How often (seconds) the ingest checks the watchlist version for a change.
WATCHLIST_REFRESH_SECONDS = env.float("WATCHLIST_REFRESH_SECONDS", 2.0, minimum=0.1, maximum=60)
