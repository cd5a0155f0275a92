"""Settings for agentapi-admin: every value comes from the environment, read here once.

The variables, their defaults and accepted forms are listed in README.md and
`.env.example`; app code reads `django.conf.settings`, never `os.environ`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured

from agentapi_admin import envconfig as cfg

BASE_DIR = Path(__file__).resolve().parent.parent
# A local `.env` is convenient in development; the test suite turns it off so a
# developer's file cannot change what the tests see.
_from_devserver = False
if cfg.boolean("READ_ENV_FILE", default=True):
    cfg.read_env_file(BASE_DIR / ".env")
    # A running `make run` of this checkout names its Redis here (see agentapi_admin/devserver.py).
    _from_devserver = cfg.read_devserver_file(BASE_DIR / "var" / "devserver.env")

# --------------------------------------------------------------------------- core
DEBUG = cfg.boolean("DEBUG", default=False)

# Development-only values. They work when DEBUG=true so `make run` needs no setup,
# and are refused when DEBUG=false so they can never reach production.
DEV_SECRET_KEY = "dev-insecure-secret-key-do-not-use-in-production-0123456789abcdef"  # noqa: S105 - refused when DEBUG=false
DEV_TOKEN_ENCRYPTION_KEY = "00" * 32

SECRET_KEY = cfg.string("SECRET_KEY") or (DEV_SECRET_KEY if DEBUG else "")
if not DEBUG and (not SECRET_KEY or SECRET_KEY == DEV_SECRET_KEY or len(SECRET_KEY) < 50):
    raise ImproperlyConfigured(
        "SECRET_KEY must be set to a random value of at least 50 characters when DEBUG=false, e.g. "
        "`python -c 'import secrets; print(secrets.token_urlsafe(50))'`."
    )

ALLOWED_HOSTS = cfg.string_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"] if DEBUG else [])
if not DEBUG and not ALLOWED_HOSTS:
    raise ImproperlyConfigured(
        "ALLOWED_HOSTS must list the host names this app serves when DEBUG=false, e.g. admin.example.com."
    )
CSRF_TRUSTED_ORIGINS = cfg.string_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "csp",
    "agentapi_admin.apps.ProjectConfig",
    "audit",
    "tenants",
    "resilience",
    "console",
    "portal",
    "webhooks",
    "automation",
]

# The BrowserOnly* classes are Django's, WhiteNoise's, django-csp's and the sessions app's
# middlewares that pass /api/ requests straight through (agentapi_admin/middleware.py):
# machine clients have no session, CSRF cookie, messages or frames, and get fixed
# security headers from ApiSecurityHeadersMiddleware instead.
MIDDLEWARE = [
    "agentapi_admin.logs.RequestLogMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "agentapi_admin.middleware.ApiSecurityHeadersMiddleware",
    "agentapi_admin.middleware.RejectNulBytesMiddleware",
    "agentapi_admin.middleware.BrowserOnlyWhiteNoiseMiddleware",
    "resilience.sessions.middleware.BrowserOnlySessionMiddleware",
    "resilience.middleware.DatabaseUnavailableMiddleware",
    "agentapi_admin.middleware.BrowserOnlyCommonMiddleware",
    "agentapi_admin.middleware.BrowserOnlyCsrfViewMiddleware",
    "agentapi_admin.middleware.BrowserOnlyAuthenticationMiddleware",
    "resilience.sessions.middleware.BrowserOnlySessionActivityMiddleware",
    "resilience.ratelimit.middleware.RateLimitMiddleware",
    "agentapi_admin.middleware.BrowserOnlyMessageMiddleware",
    "agentapi_admin.middleware.BrowserOnlyXFrameOptionsMiddleware",
    "agentapi_admin.middleware.BrowserOnlyCSPMiddleware",
]
# Django's checks for these two want the exact class paths; agentapi_admin.W002/W003
# (agentapi_admin/checks.py) check for the browser-only subclasses above instead.
SILENCED_SYSTEM_CHECKS = ["security.W002", "security.W003"]

ROOT_URLCONF = "agentapi_admin.urls"
WSGI_APPLICATION = "agentapi_admin.wsgi.application"

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
                "resilience.context_processors.redis_mode",
            ],
        },
    },
]

# ----------------------------------------------------------------------- database
DATABASES = {"default": cfg.database_url("DATABASE_URL", f"sqlite:///{BASE_DIR / 'var' / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] != "django.db.backends.sqlite3":
    # Persistent connections save a TCP + auth handshake per request; health checks
    # drop a connection PostgreSQL closed behind our back instead of failing a request.
    DATABASES["default"]["CONN_MAX_AGE"] = cfg.integer("DATABASE_CONN_MAX_AGE", 60, minimum=0)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# -------------------------------------------------------------------------- redis
RESILIENCE_KEY_PREFIX = cfg.string("REDIS_KEY_PREFIX", "agentapi")
RESILIENCE_REDIS_ENABLED = cfg.boolean("REDIS_ENABLE", default=True)
RESILIENCE_REDIS_PROTOCOL = cfg.choice("REDIS_PROTOCOL", "native", ("native", "rest"))
RESILIENCE_REDIS_MAX_POOL_SIZE = cfg.integer("REDIS_MAX_POOL_SIZE", 50, minimum=1, maximum=10_000)
RESILIENCE_REDIS_TIMEOUT = cfg.duration("REDIS_CONNECTION_TIMEOUT", "5s", minimum=0.01)
RESILIENCE_REDIS_PASSWORD = cfg.string("REDIS_PASSWORD")
RESILIENCE_UPSTASH_REST_URL = cfg.url("UPSTASH_REDIS_REST_URL", "", schemes=("https", "http"))
RESILIENCE_UPSTASH_REST_TOKEN = cfg.string("UPSTASH_REDIS_REST_TOKEN")

_upstash_url = cfg.url("UPSTASH_REDIS_URL", "", schemes=("rediss",))
_redis_url = cfg.url("REDIS_URL", "", schemes=("redis", "rediss", "unix"))
# Upstash's native endpoint wins so a deployment switches provider by adding one variable.
RESILIENCE_REDIS_URL = _upstash_url or _redis_url or "redis://127.0.0.1:6379/0"
RESILIENCE_REDIS_URL_SOURCE = "UPSTASH_REDIS_URL" if _upstash_url else ("REDIS_URL" if _redis_url else "default")
if _from_devserver and _redis_url:
    RESILIENCE_REDIS_URL_SOURCE = "var/devserver.env (make run)"

if RESILIENCE_REDIS_PROTOCOL == "rest":
    if not (RESILIENCE_UPSTASH_REST_URL and RESILIENCE_UPSTASH_REST_TOKEN):
        raise ImproperlyConfigured(
            "REDIS_PROTOCOL=rest needs UPSTASH_REDIS_REST_URL and UPSTASH_REDIS_REST_TOKEN "
            "(from the Upstash console, 'REST API' section)."
        )
    if RESILIENCE_REDIS_ENABLED and not (_upstash_url or _redis_url):
        raise ImproperlyConfigured(
            "REDIS_PROTOCOL=rest is used only for health probing: cache, sessions, rate limits and breakers "
            "need the native protocol. Set UPSTASH_REDIS_URL (rediss://default:<password>@<host>:6379) "
            "or REDIS_URL, or set REDIS_ENABLE=false."
        )

# The ops page's "keys per app area" reads at most this many keys with SCAN (then extrapolates).
RESILIENCE_HEALTH_SCAN_SAMPLE = cfg.integer("REDIS_HEALTH_SCAN_SAMPLE", 10_000, minimum=100, maximum=1_000_000)
# Admin ops pages refresh themselves this often (htmx polling; 0 turns it off).
RESILIENCE_OPS_REFRESH_SECONDS = cfg.integer("OPS_REFRESH_SECONDS", 10, minimum=0, maximum=3600)

# Connection-level options shared by every Redis client the app builds (cache,
# sessions, limiter, breakers), so a password or timeout is honoured everywhere.
RESILIENCE_REDIS_CONNECTION_KWARGS: dict[str, Any] = {
    "max_connections": RESILIENCE_REDIS_MAX_POOL_SIZE,
    "socket_connect_timeout": RESILIENCE_REDIS_TIMEOUT,
    "socket_timeout": RESILIENCE_REDIS_TIMEOUT,
    "health_check_interval": 30,
}
if RESILIENCE_REDIS_PASSWORD and not urlsplit(RESILIENCE_REDIS_URL).password:
    RESILIENCE_REDIS_CONNECTION_KWARGS["password"] = RESILIENCE_REDIS_PASSWORD

# TLS (rediss://, Upstash's native protocol). The server certificate is verified
# against REDIS_TLS_CA_FILE (else the system trust store) and must name the host;
# turning verification off is a development-only escape hatch.
RESILIENCE_REDIS_TLS = urlsplit(RESILIENCE_REDIS_URL).scheme == "rediss"
RESILIENCE_REDIS_TLS_VERIFY = cfg.boolean("REDIS_TLS_VERIFY", default=True)
RESILIENCE_REDIS_TLS_CA_FILE = cfg.file_path("REDIS_TLS_CA_FILE")
RESILIENCE_REDIS_TLS_CERT_FILE = cfg.file_path("REDIS_TLS_CERT_FILE")
RESILIENCE_REDIS_TLS_KEY_FILE = cfg.file_path("REDIS_TLS_KEY_FILE")
if not RESILIENCE_REDIS_TLS_VERIFY and not DEBUG:
    raise ImproperlyConfigured(
        "REDIS_TLS_VERIFY=false is refused when DEBUG=false: without verification anyone on the path can "
        "impersonate Redis and read sessions. For a private CA set REDIS_TLS_CA_FILE to its PEM certificate."
    )
if bool(RESILIENCE_REDIS_TLS_CERT_FILE) != bool(RESILIENCE_REDIS_TLS_KEY_FILE):
    raise ImproperlyConfigured(
        "REDIS_TLS_CERT_FILE and REDIS_TLS_KEY_FILE go together (a client certificate and its private key)."
    )

# Sentinel: a list of sentinels replaces the single URL; every client then asks
# them for the current master, so a failover needs no configuration change.
RESILIENCE_REDIS_SENTINELS = cfg.host_port_list("REDIS_SENTINELS", default_port=26379)
RESILIENCE_REDIS_SENTINEL_MASTER = cfg.string("REDIS_SENTINEL_MASTER", "mymaster")
RESILIENCE_REDIS_SENTINEL_PASSWORD = cfg.string("REDIS_SENTINEL_PASSWORD")
RESILIENCE_REDIS_SENTINEL_DB = cfg.integer("REDIS_SENTINEL_DB", 0, minimum=0, maximum=15)
if RESILIENCE_REDIS_SENTINELS:
    if _upstash_url:
        raise ImproperlyConfigured(
            "REDIS_SENTINELS and UPSTASH_REDIS_URL are both set: Upstash is managed and has no sentinels; "
            "unset one of them."
        )
    if RESILIENCE_REDIS_TLS:
        raise ImproperlyConfigured(
            "REDIS_SENTINELS with a rediss:// REDIS_URL is not supported: Sentinel mode connects to the "
            "masters the sentinels name, over plain TCP inside a private network. Unset REDIS_URL."
        )
    if not RESILIENCE_REDIS_SENTINEL_MASTER:
        raise ImproperlyConfigured("REDIS_SENTINEL_MASTER must name the master the sentinels monitor (e.g. mymaster).")
    # For display and logs only; clients get the sentinels, not this URL.
    RESILIENCE_REDIS_URL = "redis+sentinel://{}/{}/{}".format(
        ",".join(f"{host}:{port}" for host, port in RESILIENCE_REDIS_SENTINELS),
        RESILIENCE_REDIS_SENTINEL_MASTER,
        RESILIENCE_REDIS_SENTINEL_DB,
    )
    RESILIENCE_REDIS_URL_SOURCE = "REDIS_SENTINELS"
    if RESILIENCE_REDIS_PASSWORD:
        RESILIENCE_REDIS_CONNECTION_KWARGS["password"] = RESILIENCE_REDIS_PASSWORD

# Redis Cluster: seed nodes replace the single URL; the cluster client learns every
# master and replica from them and follows slot moves and failovers by itself.
RESILIENCE_REDIS_CLUSTER_NODES = cfg.host_port_list("REDIS_CLUSTER_NODES", default_port=6379, example="redis-node")
_cluster_tls = cfg.boolean("REDIS_CLUSTER_TLS", default=False)
if RESILIENCE_REDIS_CLUSTER_NODES:
    if RESILIENCE_REDIS_SENTINELS:
        raise ImproperlyConfigured(
            "REDIS_CLUSTER_NODES and REDIS_SENTINELS are both set: a Redis Cluster fails over by itself and "
            "Sentinel watches a single master; unset one of them."
        )
    if _upstash_url:
        raise ImproperlyConfigured(
            "REDIS_CLUSTER_NODES and UPSTASH_REDIS_URL are both set: Upstash is one endpoint, not cluster nodes; "
            "unset one of them."
        )
    if RESILIENCE_REDIS_TLS:
        raise ImproperlyConfigured(
            "REDIS_CLUSTER_NODES with a rediss:// REDIS_URL is ambiguous: cluster mode ignores REDIS_URL. "
            "Unset REDIS_URL and set REDIS_CLUSTER_TLS=true to reach the nodes over TLS."
        )
    RESILIENCE_REDIS_TLS = _cluster_tls
    # For display and logs only; clients get the seed nodes, not this URL.
    RESILIENCE_REDIS_URL = "redis+cluster://" + ",".join(f"{h}:{p}" for h, p in RESILIENCE_REDIS_CLUSTER_NODES)
    RESILIENCE_REDIS_URL_SOURCE = "REDIS_CLUSTER_NODES"
    if RESILIENCE_REDIS_PASSWORD:
        RESILIENCE_REDIS_CONNECTION_KWARGS["password"] = RESILIENCE_REDIS_PASSWORD
    if RESILIENCE_REDIS_TLS:
        RESILIENCE_REDIS_CONNECTION_KWARGS["ssl"] = True

if RESILIENCE_REDIS_TLS:
    RESILIENCE_REDIS_CONNECTION_KWARGS.update(
        {
            "ssl_cert_reqs": "required" if RESILIENCE_REDIS_TLS_VERIFY else "none",
            "ssl_check_hostname": RESILIENCE_REDIS_TLS_VERIFY,
            "ssl_ca_certs": RESILIENCE_REDIS_TLS_CA_FILE or None,
            "ssl_certfile": RESILIENCE_REDIS_TLS_CERT_FILE or None,
            "ssl_keyfile": RESILIENCE_REDIS_TLS_KEY_FILE or None,
        }
    )


def _redis_cache(prefix: str) -> dict:
    options: dict[str, Any] = {
        # Every command passes through the in-process Redis breaker, so an outage
        # fails fast instead of costing each request a connect timeout.
        "CLIENT_CLASS": "resilience.breakers.redis_client.BreakerCacheClient",
        # redis-py picks the hiredis parser by itself when hiredis is installed.
        "CONNECTION_POOL_KWARGS": dict(RESILIENCE_REDIS_CONNECTION_KWARGS),
    }
    location: str | list[str] = RESILIENCE_REDIS_URL
    if RESILIENCE_REDIS_SENTINELS:
        # A one-item LOCATION list keeps reads on the master too: replicas lag, and a
        # session or counter read right after its write must see that write.
        location = [f"redis://{RESILIENCE_REDIS_SENTINEL_MASTER}/{RESILIENCE_REDIS_SENTINEL_DB}"]
        options.update(
            {
                # django-redis's SentinelClient behind the same Redis breaker.
                "CLIENT_CLASS": "resilience.breakers.redis_client.BreakerSentinelClient",
                "CONNECTION_FACTORY": "django_redis.pool.SentinelConnectionFactory",
                "CONNECTION_POOL_CLASS": "redis.sentinel.SentinelConnectionPool",
                "SENTINELS": RESILIENCE_REDIS_SENTINELS,
                "SENTINEL_KWARGS": {
                    "password": RESILIENCE_REDIS_SENTINEL_PASSWORD or None,
                    "socket_connect_timeout": RESILIENCE_REDIS_TIMEOUT,
                    "socket_timeout": RESILIENCE_REDIS_TIMEOUT,
                },
            }
        )
    if RESILIENCE_REDIS_CLUSTER_NODES:
        # django-redis has no cluster mode: this factory builds one redis-py RedisCluster per process.
        location = [f"redis://{host}:{port}" for host, port in RESILIENCE_REDIS_CLUSTER_NODES[:1]]
        options.update(
            {
                "CLIENT_CLASS": "resilience.breakers.redis_client.BreakerClusterClient",
                "CONNECTION_FACTORY": "resilience.breakers.redis_client.ClusterConnectionFactory",
                "CLUSTER_NODES": RESILIENCE_REDIS_CLUSTER_NODES,
            }
        )
    return {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": location,
        "KEY_PREFIX": f"{RESILIENCE_KEY_PREFIX}:{prefix}",
        "TIMEOUT": 300,
        "OPTIONS": options,
    }


if RESILIENCE_REDIS_ENABLED:
    CACHES = {"default": _redis_cache("cache"), "sessions": _redis_cache("session")}
else:
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "default"},
        "sessions": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "sessions"},
    }

# ----------------------------------------------------------------------- sessions
SESSION_STORAGE = cfg.choice("SESSION_STORAGE", "redis", ("redis", "cached_db", "db"))
SESSION_TTL = cfg.duration("SESSION_TTL", "3600s", minimum=60)
SESSION_CLEANUP_INTERVAL = cfg.duration("SESSION_CLEANUP_INTERVAL", "300s", minimum=1)
# Activity slides SESSION_TTL; this ends a session this long after sign-in however active it is.
RESILIENCE_SESSION_MAX_AGE_ABSOLUTE = cfg.duration("SESSION_MAX_AGE_ABSOLUTE", "12h", minimum=60)
if RESILIENCE_SESSION_MAX_AGE_ABSOLUTE < SESSION_TTL:
    raise ImproperlyConfigured(
        f"SESSION_MAX_AGE_ABSOLUTE ({RESILIENCE_SESSION_MAX_AGE_ABSOLUTE:g}s) must be at least SESSION_TTL "
        f"({SESSION_TTL:g}s): the absolute lifetime caps the sliding one, e.g. SESSION_MAX_AGE_ABSOLUTE=12h."
    )
if SESSION_STORAGE == "redis" and not RESILIENCE_REDIS_ENABLED:
    # An in-process cache would log users out on every restart and split sessions
    # between workers; the database is the honest fallback.
    SESSION_EFFECTIVE_STORAGE = "db"
else:
    SESSION_EFFECTIVE_STORAGE = SESSION_STORAGE
# Django's engines plus a per-user index, so the admin can list and revoke a user's sessions.
# "redis" keeps staff sessions in the database, so the console works during a Redis outage.
SESSION_ENGINE = {
    "redis": "resilience.sessions.backend",
    "cached_db": "resilience.sessions.backends.cached_db",
    "db": "resilience.sessions.backends.db",
}[SESSION_EFFECTIVE_STORAGE]
# An active user's IP / user agent / last seen are rewritten at most this often, not on every request.
RESILIENCE_SESSION_ACTIVITY_INTERVAL = cfg.duration("SESSION_ACTIVITY_INTERVAL", "60s", minimum=1)
SESSION_CACHE_ALIAS = "sessions"
SESSION_COOKIE_AGE = int(SESSION_TTL)
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"

# -------------------------------------------------------------- encryption / keys
_token_key = cfg.hex_key("TOKEN_ENCRYPTION_KEY")
if _token_key is None and DEBUG:
    _token_key = bytes.fromhex(DEV_TOKEN_ENCRYPTION_KEY)
# Still None here only when DEBUG=false (development falls back to the dev key above).
if _token_key is None or (not DEBUG and _token_key == bytes.fromhex(DEV_TOKEN_ENCRYPTION_KEY)):
    raise ImproperlyConfigured(
        "TOKEN_ENCRYPTION_KEY must be set to 64 hexadecimal characters when DEBUG=false, "
        "e.g. the output of `openssl rand -hex 32`."
    )
TENANTS_TOKEN_ENCRYPTION_KEY: bytes = _token_key
TENANTS_TOKEN_ENCRYPTION_KEYS_OLD = cfg.hex_key_list("TOKEN_ENCRYPTION_KEYS_OLD")

# ----------------------------------------------------------------------- tenants
# How long an API-key lookup and a tenant's evaluated flags stay in Redis; writes
# invalidate them on commit, so this only bounds staleness when Redis missed a publish.
TENANTS_CACHE_TTL = cfg.duration("TENANTS_CACHE_TTL", "300s", minimum=1)
# How often each app worker looks for cache invalidations Redis missed and delivers them
# (one indexed query per interval per worker); 0 leaves them to run_maintenance alone.
TENANTS_OUTBOX_POLL_INTERVAL = cfg.duration("TENANTS_OUTBOX_POLL_INTERVAL", "1s")
# The change stream (GET /api/v1/stream): a heartbeat comment this often keeps proxies from
# closing an idle stream; each server process holds at most this many streams, and at most
# this many per tenant.
TENANTS_STREAM_HEARTBEAT = cfg.duration("TENANTS_STREAM_HEARTBEAT", "15s", minimum=1)
TENANTS_STREAM_MAX_CONNECTIONS = cfg.integer("TENANTS_STREAM_MAX_CONNECTIONS", 500, minimum=1)
TENANTS_STREAM_MAX_PER_TENANT = cfg.integer("TENANTS_STREAM_MAX_PER_TENANT", 20, minimum=1)
# How long a portal invitation link stays usable.
TENANTS_INVITATION_TTL = cfg.duration("TENANTS_INVITATION_TTL", "7d", minimum=60)

# ---------------------------------------------------------------------- webhooks
# Functions called with every audit row in its transaction (dotted paths): how a change
# becomes a webhook event without the lower apps knowing about webhooks.
AUDIT_RECEIVERS = ["webhooks.services.events.events_from_audit"]
# Functions called with each breaker transition recorded (best-effort, outside transactions).
RESILIENCE_BREAKER_TRANSITION_RECEIVERS = ["webhooks.services.events.events_from_breaker"]
# How long one webhook request may take (connect, send, read), and how much of the answer is read.
WEBHOOKS_TIMEOUT = cfg.duration("WEBHOOKS_TIMEOUT", "10s", minimum=0.1)
WEBHOOKS_RESPONSE_MAX_BYTES = cfg.integer("WEBHOOKS_RESPONSE_MAX_BYTES", 8192, minimum=0, maximum=1_048_576)
# Retries: exponential from BACKOFF_BASE, capped at BACKOFF_MAX, with jitter, until RETRY_WINDOW
# after the event; then the delivery is marked failed.
WEBHOOKS_BACKOFF_BASE = cfg.duration("WEBHOOKS_BACKOFF_BASE", "5s", minimum=0.001)
WEBHOOKS_BACKOFF_MAX = cfg.duration("WEBHOOKS_BACKOFF_MAX", "1h", minimum=0.001)
WEBHOOKS_RETRY_WINDOW = cfg.duration("WEBHOOKS_RETRY_WINDOW", "24h", minimum=1)
# Each endpoint's breaker (webhook.<id>): consecutive failures that open it, seconds until a trial.
WEBHOOKS_BREAKER_FAILURES = cfg.integer("WEBHOOKS_BREAKER_FAILURES", 5, minimum=1, maximum=1000)
WEBHOOKS_BREAKER_RESET = cfg.duration("WEBHOOKS_BREAKER_RESET", "60s", minimum=0.01)
# How long a rotated-out secret keeps signing next to its successor.
WEBHOOKS_SECRET_OVERLAP = cfg.duration("WEBHOOKS_SECRET_OVERLAP", "24h", minimum=0)
# How long delivered and failed deliveries stay in the delivery log (pending ones always stay).
WEBHOOKS_LOG_RETENTION = cfg.duration("WEBHOOKS_LOG_RETENTION", "30d", minimum=3600)
# How often each app worker's webhook courier looks for due deliveries; 0 leaves them to
# deliver_webhooks / run_maintenance.
WEBHOOKS_POLL_INTERVAL = cfg.duration("WEBHOOKS_POLL_INTERVAL", "1s")
# Tenant endpoints may not target loopback, private or link-local addresses unless this is true
# (platform-wide endpoints, set up by staff, may).
WEBHOOKS_ALLOW_PRIVATE_TARGETS = cfg.boolean("WEBHOOKS_ALLOW_PRIVATE_TARGETS", default=False)

# Invitation links are emailed when EMAIL_URL names a server (smtp://, smtp+tls://, ...);
# in development the console backend prints them; in production without EMAIL_URL they are
# only shown to the inviting owner.
_email = cfg.email_url("EMAIL_URL")
if _email:
    vars().update(_email)
elif DEBUG:
    EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
TENANTS_INVITATION_EMAIL = bool(_email) or DEBUG
# The portal's "Forgot your password?" mails a reset link, so it exists only where mail can be sent.
PORTAL_PASSWORD_RESET = bool(_email) or DEBUG
DEFAULT_FROM_EMAIL = cfg.string("DEFAULT_FROM_EMAIL", "agentapi-admin@localhost")

# -------------------------------------------------------- rate limits / breakers
RESILIENCE_RATE_LIMIT_ENABLED = cfg.boolean("RATE_LIMIT_ENABLED", default=True)
RESILIENCE_RATE_LIMIT_PER_MINUTE = cfg.integer("RATE_LIMIT_REQUESTS_PER_MINUTE", 60, minimum=1, maximum=1_000_000)
RESILIENCE_RATE_LIMIT_BURST = cfg.integer("RATE_LIMIT_BURST_SIZE", 10, minimum=0, maximum=1_000_000)
RESILIENCE_RATE_LIMIT_FAIL_MODE = cfg.choice("RATE_LIMIT_FAIL_MODE", "open", ("open", "closed"))
# How the client address is found behind proxies: 0 = REMOTE_ADDR; N = the Nth
# X-Forwarded-For entry from the right; CIDRs = skip entries inside those networks.
RESILIENCE_RATE_LIMIT_TRUSTED_PROXIES = cfg.trusted_proxies("RATE_LIMIT_TRUSTED_PROXIES", "0")
# Path prefixes the rate-limit middleware guards (per IP, per user, per tenant).
RESILIENCE_RATE_LIMIT_PATHS = cfg.string_list("RATE_LIMIT_PATHS", ["/api/"])
# Failed sign-in / password-form attempts per IP and per account (resilience.throttle, scope `form`).
RESILIENCE_FORM_RATE_IP = cfg.rate("RATE_LIMIT_FORM_IP_RATE", "20/m")
RESILIENCE_FORM_RATE_USERNAME = cfg.rate("RATE_LIMIT_FORM_USERNAME_RATE", "5/m")
# django-ratelimit itself is only bench/ratelimit's point of comparison now.
RATELIMIT_ENABLE = RESILIENCE_RATE_LIMIT_ENABLED
RATELIMIT_USE_CACHE = "default"
RATELIMIT_FAIL_OPEN = RESILIENCE_RATE_LIMIT_FAIL_MODE == "open"
# Inside the default cache: keys read `agentapi:cache:1:rl:form:<sha256>`.
RATELIMIT_CACHE_PREFIX = "rl:form:"

RESILIENCE_BREAKER_ENABLED = cfg.boolean("CIRCUIT_BREAKER_ENABLED", default=True)
RESILIENCE_BREAKER_FAILURE_THRESHOLD = cfg.integer("CIRCUIT_BREAKER_FAILURE_THRESHOLD", 5, minimum=1, maximum=10_000)
RESILIENCE_BREAKER_SUCCESS_THRESHOLD = cfg.integer("CIRCUIT_BREAKER_SUCCESS_THRESHOLD", 2, minimum=1, maximum=10_000)
RESILIENCE_BREAKER_TIMEOUT = cfg.duration("CIRCUIT_BREAKER_TIMEOUT", "30s", minimum=0.1)
# Per-breaker exceptions, e.g. `redis:reset_timeout=5s;upstream.*:fail_max=3` (name or glob).
RESILIENCE_BREAKER_OVERRIDES = cfg.breaker_overrides("CIRCUIT_BREAKER_OVERRIDES")

# ------------------------------------------------------------------------- auth
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
DEMO_PASSWORD = cfg.string("DEMO_PASSWORD", "demo-pass-123")
# Where `login_required` sends anonymous visitors (Django's default, /accounts/login/, does not exist here);
# admin pages send them to the admin login themselves.
LOGIN_URL = "portal:login"

# ------------------------------------------------------------------ i18n / static
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
WHITENOISE_USE_FINDERS = DEBUG
# Files served at the site root, e.g. /favicon.ico, which browsers ask for on every page.
WHITENOISE_ROOT = BASE_DIR / "public"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

# --------------------------------------------------------------------- security
# Behind a TLS-terminating proxy set SECURE_PROXY_SSL_HEADER=true so Django trusts
# X-Forwarded-Proto; never enable it when clients can reach the app directly.
if cfg.boolean("SECURE_PROXY_SSL_HEADER", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = cfg.boolean("SECURE_SSL_REDIRECT", default=not DEBUG)
# Health probes come from the orchestrator over plain HTTP inside the private network.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
SECURE_HSTS_SECONDS = cfg.integer("SECURE_HSTS_SECONDS", 0 if DEBUG else 31_536_000, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = cfg.boolean("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=not DEBUG)
SECURE_HSTS_PRELOAD = cfg.boolean("SECURE_HSTS_PRELOAD", default=not DEBUG)
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# Scripts only from our own static files: no inline <script>, no eval, no CDN.
# Inline style attributes stay allowed because Django's admin widgets still use them.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "font-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}

# ---------------------------------------------------------------- observability
# GET /metrics (Prometheus). Scrapers authenticate with the bearer token or come from
# an allowed network (the direct peer address, never X-Forwarded-For); neither set = refused.
METRICS_ENABLED = cfg.boolean("METRICS_ENABLED", default=True)
METRICS_TOKEN = cfg.string("METRICS_TOKEN")
METRICS_ALLOWED_CIDRS = cfg.cidr_list("METRICS_ALLOWED_CIDRS")
if METRICS_TOKEN and len(METRICS_TOKEN) < 16:
    raise ImproperlyConfigured(
        "METRICS_TOKEN must be at least 16 characters, e.g. "
        "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`."
    )
# The ops pages' history: run_maintenance samples Redis, limiter and breakers this often.
RESILIENCE_HISTORY_INTERVAL = cfg.duration("HISTORY_SAMPLE_INTERVAL", "60s", minimum=1)

# ---------------------------------------------------------------------- logging
LOG_LEVEL = cfg.choice("LOG_LEVEL", "info", ("debug", "info", "warning", "error")).upper()
# json: one object per line (time, level, logger, message, request_id, route, status, duration_ms, tenant).
LOG_FORMAT = cfg.choice("LOG_FORMAT", "plain", ("plain", "json"))
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request": {"()": "agentapi_admin.logformat.RequestContextFilter"}},
    "formatters": {
        "plain": {"()": "agentapi_admin.logformat.PlainFormatter"},
        "json": {"()": "agentapi_admin.logformat.JsonFormatter"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT, "filters": ["request"]},
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {"django": {"handlers": ["console"], "level": LOG_LEVEL, "propagate": False}},
}
