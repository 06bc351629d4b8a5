"""Settings for the commerce backend.

Every connection string comes from the environment. The defaults point at the
native stack that `make stack-up` starts on 127.0.0.1 (see compose/native/).
"""
import os
from pathlib import Path

import dj_database_url

from commerce.logging import build_logging_config, configure_structlog

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


# The default key only suits local demos and tests; a deployment sets its own.
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "insecure-local-development-key-change-me")
DEBUG = env_bool("DJANGO_DEBUG", False)
ALLOWED_HOSTS = os.environ.get("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost,testserver").split(",")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "rest_framework",
    "django_filters",
    "treebeard",
    "django_structlog",
    "commerce",
    "catalog",
    "cart",
    "orders",
    "inventory",
    "payments",
    "cdc",
    "analytics",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_structlog.middlewares.RequestMiddleware",
    "commerce.errors.DatabaseUnavailableMiddleware",
]

ROOT_URLCONF = "commerce.urls"
WSGI_APPLICATION = "commerce.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Services -------------------------------------------------------------

DATABASE_URL = os.environ.get(
    "DATABASE_URL", "postgres://commerce:commerce@127.0.0.1:25432/commerce"
)
DATABASES = {
    # ATOMIC_REQUESTS stays off: service functions open their transactions
    # visibly, so a view never hides a transaction boundary.
    "default": dj_database_url.parse(DATABASE_URL, conn_max_age=60, conn_health_checks=True),
}
DATABASES["default"].setdefault("OPTIONS", {})
# Fail fast when PostgreSQL is down, so /readyz and the API return 503 quickly.
DATABASES["default"]["OPTIONS"].setdefault("connect_timeout", 3)

# The sales projection has a database and a role of its own (compose/postgres/bootstrap.sql).
# analytics.router keeps analytics models there and every other model out of it.
ANALYTICS_DATABASE_URL = os.environ.get(
    "ANALYTICS_DATABASE_URL",
    "postgres://commerce_analytics:commerce_analytics@127.0.0.1:25432/commerce_analytics",
)
DATABASES["analytics"] = dj_database_url.parse(ANALYTICS_DATABASE_URL, conn_max_age=60, conn_health_checks=True)
DATABASES["analytics"].setdefault("OPTIONS", {})
DATABASES["analytics"]["OPTIONS"].setdefault("connect_timeout", 3)
# Named after the default test database, so two test runs that use different
# default databases on one server do not drop each other's analytics test database.
DATABASES["analytics"]["TEST"] = {"NAME": f"test_{DATABASES['default']['NAME']}_analytics"}
DATABASE_ROUTERS = ["analytics.router.AnalyticsRouter"]

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:26379/0")
KAFKA_BOOTSTRAP_SERVERS = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:29092")
OPENSEARCH_URL = os.environ.get("OPENSEARCH_URL", "http://127.0.0.1:29200")
# Topics are <prefix>.<aggregate type>; tests use a prefix of their own per run.
KAFKA_TOPIC_PREFIX = os.environ.get("KAFKA_TOPIC_PREFIX", "commerce")

CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
    }
}

# --- Celery ---------------------------------------------------------------

CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:26379/1")
CELERY_RESULT_BACKEND = os.environ.get("CELERY_RESULT_BACKEND", "redis://127.0.0.1:26379/2")
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
# Tests give each run its own queue so a worker never picks up another run's leftovers.
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("CELERY_TASK_DEFAULT_QUEUE", "celery")
CELERY_TASK_ACKS_LATE = True
# Keep Django's LOGGING (structured JSON) in workers instead of Celery's own format.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_RESULT_EXPIRES = 3600
CELERY_BEAT_SCHEDULE = {
    "record-worker-heartbeat": {
        "task": "commerce.tasks.record_worker_heartbeat",
        "schedule": float(os.environ.get("HEARTBEAT_INTERVAL_SECONDS", "10")),
    },
    # The inventory entries expire after one interval, so a worker that was down
    # does not come back to a queue of stale copies of the same periodic task.
    "inventory-expire-reservations": {
        "task": "inventory.tasks.expire_reservations",
        "schedule": 5.0,
        "options": {"expires": 5.0},
    },
    "inventory-reconcile": {
        "task": "inventory.tasks.reconcile_inventory",
        "schedule": 300.0,
        "options": {"expires": 300.0},
    },
    "orders-expire-overdue": {"task": "orders.tasks.expire_overdue_orders", "schedule": 10.0},
    "payments-reconcile": {"task": "payments.tasks.reconcile_payments", "schedule": 60.0},
    "commerce-purge-idempotency-keys": {"task": "commerce.tasks.purge_idempotency_keys", "schedule": 3600.0},
    "catalog-check-search-drift": {
        "task": "catalog.tasks.check_search_drift",
        "schedule": 60.0,
        "options": {"expires": 60.0},
    },
    "analytics-reconcile-order-counts": {
        "task": "analytics.tasks.reconcile_order_counts",
        "schedule": 900.0,
        "options": {"expires": 900.0},
    },
}

# --- Kafka consumers (cdc.consumers) -----------------------------------------

# Handler attempts before a message goes to <topic>.dlq, and the first backoff (it doubles).
CDC_CONSUMER_MAX_ATTEMPTS = int(os.environ.get("CDC_CONSUMER_MAX_ATTEMPTS", "3"))
CDC_CONSUMER_RETRY_BACKOFF_SECONDS = float(os.environ.get("CDC_CONSUMER_RETRY_BACKOFF_SECONDS", "0.5"))

# --- Catalog --------------------------------------------------------------

# Shopify's product export carries no currency, so imports price in this one.
CATALOG_CURRENCY = os.environ.get("CATALOG_CURRENCY", "USD")

# --- Cart, checkout and payments --------------------------------------------

CART_MAX_LINE_QUANTITY = int(os.environ.get("CART_MAX_LINE_QUANTITY", "100"))
CART_MAX_LINES = int(os.environ.get("CART_MAX_LINES", "100"))
# How long a placed order waits for payment before it expires and releases its stock.
ORDER_PAYMENT_WINDOW_SECONDS = int(os.environ.get("ORDER_PAYMENT_WINDOW_SECONDS", "900"))
# Extra life of a checkout's reservation beyond the payment window (see orders.services.checkout).
RESERVATION_GRACE_SECONDS = int(os.environ.get("RESERVATION_GRACE_SECONDS", "300"))
IDEMPOTENCY_KEY_TTL_SECONDS = int(os.environ.get("IDEMPOTENCY_KEY_TTL_SECONDS", str(24 * 3600)))

PAYMENT_PROVIDER_URL = os.environ.get("PAYMENT_PROVIDER_URL", "http://127.0.0.1:28100")
PAYMENT_PROVIDER_API_KEY = os.environ.get("PAYMENT_PROVIDER_API_KEY", "sk_local_demo")
PAYMENT_PROVIDER_TIMEOUT_SECONDS = float(os.environ.get("PAYMENT_PROVIDER_TIMEOUT_SECONDS", "3"))
PAYMENT_WEBHOOK_SECRET = os.environ.get("PAYMENT_WEBHOOK_SECRET", "whsec_local_demo")
# A processing payment older than this is checked against the provider by reconciliation.
PAYMENT_RECONCILE_AFTER_SECONDS = float(os.environ.get("PAYMENT_RECONCILE_AFTER_SECONDS", "60"))
# A payment the provider has no record of after this long is failed, so the shopper can pay again.
PAYMENT_ABANDON_AFTER_SECONDS = float(os.environ.get("PAYMENT_ABANDON_AFTER_SECONDS", "600"))

# --- HTTP API -------------------------------------------------------------

REST_FRAMEWORK = {
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "rest_framework.authentication.BasicAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"],
    "DEFAULT_PAGINATION_CLASS": "catalog.api.pagination.ProductPagination",
    "EXCEPTION_HANDLER": "commerce.errors.problem_exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}

# Seconds that /readyz waits for each dependency before calling it down.
READINESS_TIMEOUT_SECONDS = float(os.environ.get("READINESS_TIMEOUT_SECONDS", "2"))

# --- Django defaults --------------------------------------------------------

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / ".static"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Logging --------------------------------------------------------------

# LOG_FORMAT=json for machines (the default), console for a developer's terminal.
LOG_FORMAT = os.environ.get("LOG_FORMAT", "json")
LOG_LEVEL = os.environ.get("LOG_LEVEL", "INFO")
LOGGING = build_logging_config(log_format=LOG_FORMAT, level=LOG_LEVEL)
configure_structlog()
DJANGO_STRUCTLOG_CELERY_ENABLED = True
