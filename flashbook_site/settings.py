"""Flashbook settings, read from the environment (12-factor).

Every value that differs between a laptop, CI and a deployment comes from an environment
variable. For local development `make` writes a `.env` file at the repository root (DEBUG on, a
random SECRET_KEY); real environment variables always win over it. Point `FLASHBOOK_ENV_FILE` at
another file, or set it to an empty string to read none.

Variables:
    DEBUG                   "1"/"true" for development; off by default.
    SECRET_KEY              required unless DEBUG is on (then a development key is used).
    ALLOWED_HOSTS           comma-separated; localhost by default.
    CSRF_TRUSTED_ORIGINS    comma-separated origins (https://example.org) behind a proxy.
    DATABASE_URL            sqlite:///... or postgres://...; default: SQLite in var/db.sqlite3.
    REDIS_URL               default redis://127.0.0.1:6379/0; redis+cluster://host:port,... names a
                            Redis Cluster by its seeds (docs/deploy.md: what runs on one).
    FLASHBOOK_REDIS_PREFIX  prefix of every Redis key Flashbook owns; default "fb".
    FLASHBOOK_ORDER_RATE    order-entry throttle per user (DRF rate: "6000/min").
    FLASHBOOK_ORDER_WAIT    seconds the API waits for the engine's immediate outcome; default 2.
    FLASHBOOK_RETENTION_DAYS  days of closed orders, fills and trades `prune_history` keeps;
                            default 30 (at least 1).
    FLASHBOOK_INITIAL_CASH  cash of a user's account when it is created; default 100000.
    FLASHBOOK_CURRENCY_DECIMALS  decimals money (cash, equity, P&L) is written with everywhere;
                            default 2 (more only when an amount has them: never rounded).
    FLASHBOOK_FIX_PORT      the FIX 4.4 acceptor's port (`run_fix`); default 9878.
    FLASHBOOK_FIX_HOST      the address it listens on; default 127.0.0.1 (0.0.0.0 in compose).
    FLASHBOOK_FIX_COMP_ID   the exchange's CompID in FIX sessions; default FLASHBOOK.
    FLASHBOOK_FIX_DIR       where FIX sessions keep their messages and sequence numbers;
                            default var/fix.
    FLASHBOOK_SIGNUP        "0" turns off self-service sign-up at /signup/; on by default.
    RESEARCH_RUNS_DIR       where research runs queued from the site write their files
                            (`run_research`); default var/research-runs.
    LOG_LEVEL               default INFO.
    LOG_FORMAT              "json" for one JSON object per log line (deployments); "plain" default.

Production over https (DEBUG off; docs/deploy.md; docker-compose.yml turns all of them on):
    SECURE_SSL_REDIRECT     redirect http to https; off by default (tools and tests speak http).
    SECURE_HSTS_SECONDS     Strict-Transport-Security max-age; default 0 (off).
    SECURE_HSTS_INCLUDE_SUBDOMAINS, SECURE_HSTS_PRELOAD   off by default.
    SESSION_COOKIE_SECURE, CSRF_COOKIE_SECURE            on by default.
    USE_X_FORWARDED_PROTO   trust the proxy's X-Forwarded-Proto header; off by default.
    FLASHBOOK_STATIC_MANIFEST  hashed, compressed static files (needs collectstatic); on by
                            default without DEBUG.
"""

import os
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()

_env_file = os.environ.get("FLASHBOOK_ENV_FILE", str(BASE_DIR / ".env"))
if _env_file and Path(_env_file).is_file():
    # Never overrides variables that are already set in the process environment.
    environ.Env.read_env(_env_file)

DEBUG = env.bool("DEBUG", default=False)

_DEV_SECRET_KEY = "django-insecure-flashbook-development-only-never-use-in-production"
SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. Set SECRET_KEY in the environment, or DEBUG=1 for development."
        )
    SECRET_KEY = _DEV_SECRET_KEY

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# --- Applications ----------------------------------------------------------------------------

DJANGO_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
]
THIRD_PARTY_APPS = [
    "channels",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
]
LOCAL_APPS = [
    "exchange.apps.ExchangeConfig",
    "agents.apps.AgentsConfig",
]
INSTALLED_APPS = DJANGO_APPS + THIRD_PARTY_APPS + LOCAL_APPS

MIDDLEWARE = [
    # /healthz and /readyz, answered before host validation and the https redirect: probes come
    # from inside the deployment by address, over plain http.
    "flashbook_site.health.HealthCheckMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Static files from the application server itself (the ASGI server does not serve them).
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # The viewer's time zone (the `tz` cookie) for the admin's and the pages' dates.
    "flashbook_site.timezones.ViewerTimeZoneMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # X-RateLimit-* on order writes (exchange.api.throttling).
    "exchange.api.throttling.RateLimitHeadersMiddleware",
]

ROOT_URLCONF = "flashbook_site.urls"
ASGI_APPLICATION = "flashbook_site.asgi.application"

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
                "exchange.pages.context_processors.site",
            ],
        },
    },
]

# --- Database --------------------------------------------------------------------------------

_DEFAULT_SQLITE = BASE_DIR / "var" / "db.sqlite3"
DATABASES = {"default": env.db_url("DATABASE_URL", default=f"sqlite:///{_DEFAULT_SQLITE}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    _sqlite_name = str(DATABASES["default"].get("NAME", ""))
    if _sqlite_name and _sqlite_name != ":memory:":
        # SQLite creates the file but not its folder.
        Path(_sqlite_name).parent.mkdir(parents=True, exist_ok=True)
    # Several processes write (web, recorder, agents): take the write lock when a transaction
    # starts rather than failing half-way, let readers proceed beside a writer (WAL), and wait
    # for the lock instead of erroring at once.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis -----------------------------------------------------------------------------------

REDIS_URL = env.str("REDIS_URL", default="redis://127.0.0.1:6379/0")
FLASHBOOK_REDIS_PREFIX = env.str("FLASHBOOK_REDIS_PREFIX", default="fb")

# --- WebSockets (Channels) -------------------------------------------------------------------
# The bridge (`manage.py run_bridge`) pushes frames through this layer to the consumers' groups.
# Its keys live under our prefix like every other Flashbook key. `capacity` bounds a slow
# browser's queue: beyond it channels-redis drops frames for that browser, which the sequence
# numbers reveal (the consumer then resyncs it from a snapshot).
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            # The layer waits for messages with a 5 s BRPOP; redis-py 8 gives every read a 5 s
            # socket timeout by default, so a socket that received nothing for 5 s lost its
            # consumer (TimeoutError in the receive loop). The read may take longer than the
            # BRPOP's own timeout.
            "hosts": [{"address": REDIS_URL, "socket_timeout": 15}],
            "prefix": f"{FLASHBOOK_REDIS_PREFIX}:asgi",
            "capacity": 500,
            "expiry": 30,
        },
    }
}

# The cache lives in Redis so that what it holds (the order-entry throttle's counters) is shared
# by every worker process.
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": f"{FLASHBOOK_REDIS_PREFIX}:cache",
    }
}

# --- REST API --------------------------------------------------------------------------------

FLASHBOOK_ORDER_RATE = env.str("FLASHBOOK_ORDER_RATE", default="6000/min")
FLASHBOOK_ORDER_WAIT = env.float("FLASHBOOK_ORDER_WAIT", default=2.0)
# --- FIX 4.4 (`run_fix`, exchange/fix) ---------------------------------------------------------
FLASHBOOK_FIX_PORT = env.int("FLASHBOOK_FIX_PORT", default=9878)
FLASHBOOK_FIX_HOST = env.str("FLASHBOOK_FIX_HOST", default="127.0.0.1")
FLASHBOOK_FIX_COMP_ID = env.str("FLASHBOOK_FIX_COMP_ID", default="FLASHBOOK")
FLASHBOOK_FIX_DIR = Path(env.str("FLASHBOOK_FIX_DIR", default=str(BASE_DIR / "var" / "fix")))

# --- Research runs queued from the site (`run_research`, agents/research_runs) ----------------
# Every run's files under RESEARCH_RUNS_DIR/<id>/: the web processes read what the worker writes,
# so both must see the same directory (one volume in docker-compose.yml).
RESEARCH_RUNS_DIR = Path(
    env.str("RESEARCH_RUNS_DIR", default=str(BASE_DIR / "var" / "research-runs"))
)

FLASHBOOK_RETENTION_DAYS = env.float("FLASHBOOK_RETENTION_DAYS", default=30.0)
FLASHBOOK_INITIAL_CASH = env.str("FLASHBOOK_INITIAL_CASH", default="100000")
# How money is written (exchange.protocol.decimals.money_str): "1250.50", never "1250.5" or "0E-8".
FLASHBOOK_CURRENCY_DECIMALS = env.int("FLASHBOOK_CURRENCY_DECIMALS", default=2)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # First, so that an anonymous request is answered 401 with a WWW-Authenticate header.
        "exchange.api.authentication.BearerTokenAuthentication",
        "exchange.api.authentication.CsrfSessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["exchange.api.parsers.StrictJSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "exchange.api.errors.exception_handler",
    "COERCE_DECIMAL_TO_STRING": True,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Flashbook API",
    "DESCRIPTION": (
        "Trade on the Flashbook exchange. Authenticate with `Authorization: Bearer <token>` "
        "(create tokens at `/api/v1/tokens/`) or with the site's session (writes then need the "
        "CSRF token). Decimals are strings. Every failure answers "
        '`{"error": {"status", "code", "field", "message"}}`. Every path answers with and '
        "without its trailing slash (a POST is never redirected). Order writes are limited per "
        "user (`FLASHBOOK_ORDER_RATE`, 6000 a minute by default): each answer carries "
        "`X-RateLimit-Limit`, `X-RateLimit-Remaining` and `X-RateLimit-Reset` (seconds), and a "
        "429 `Retry-After`. `GET /api/v1/` lists the endpoints; `GET /api/v1/time/` gives the "
        "server's clock."
    ),
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {"SideEnum": "exchange.models.Side"},
    "PREPROCESSING_HOOKS": ["exchange.api.routes.without_alternate_forms"],
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "exchange.api.schema.strict_request_bodies",
    ],
}

# --- Authentication --------------------------------------------------------------------------

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Whether visitors may create their own login at /signup/ (FLASHBOOK_SIGNUP=0 turns it off).
FLASHBOOK_SIGNUP_ENABLED = env.bool("FLASHBOOK_SIGNUP", default=True)
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# --- Internationalisation --------------------------------------------------------------------

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Static files ----------------------------------------------------------------------------

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
# Where collectstatic writes (STATIC_ROOT in the environment: the Docker image, tests).
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(BASE_DIR / "staticfiles")))
# In development WhiteNoise serves straight from the apps' and project's static folders, so no
# collectstatic is needed; in production it serves the collected files.
WHITENOISE_USE_FINDERS = DEBUG
STATIC_ROOT.mkdir(exist_ok=True)  # WhiteNoise warns on every request about a missing root

# --- Security (production) -------------------------------------------------------------------

if not DEBUG:
    SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=True)
    CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=True)
    SECURE_CONTENT_TYPE_NOSNIFF = True
    if env.bool("USE_X_FORWARDED_PROTO", default=False):
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# --- Production: https, HSTS, static files (docs/deploy.md) ------------------------------------
# Opt-in, because whether the site is reached over https is the deployment's to know: the same
# settings serve benchmarks and tests over plain http on loopback. `manage.py check --deploy`
# names whatever a deployment forgot; docker-compose.yml sets all of them.

if not DEBUG:
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=False)
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
    SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
# Probes reach the processes by address over http (the middleware answers them first anyway).
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]

# Hashed names (cached for ever by browsers) and gzip/brotli copies made once by collectstatic,
# which the Docker image runs at build time. Development serves the source files as they are.
if env.bool("FLASHBOOK_STATIC_MANIFEST", default=not DEBUG):
    STORAGES = {
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
        "staticfiles": {"BACKEND": "flashbook_site.storage.StaticFilesStorage"},
    }

# --- Logging ---------------------------------------------------------------------------------

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain"},
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        # Django's own default handler would print every record a second time.
        "django": {"handlers": ["console"], "level": "INFO", "propagate": False},
    },
}

# One JSON object per line (LOG_FORMAT=json), the same shape as the engine worker's own lines, so
# a deployment's log collector parses every process alike.
if env.str("LOG_FORMAT", default="plain") == "json":
    LOGGING["formatters"]["json"] = {"()": "flashbook_site.logs.JsonFormatter"}
    LOGGING["handlers"]["console"]["formatter"] = "json"
