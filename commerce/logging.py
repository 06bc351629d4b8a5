"""One structured logging pipeline for web, Celery and the management commands.

Both structlog loggers and plain `logging` loggers (Django, Celery, libraries)
end in the same formatter, so every line is JSON (or readable console output)
with the same keys.
"""
import logging

import structlog

SHARED_PROCESSORS = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]


def build_logging_config(*, log_format: str, level: str) -> dict:
    """Build the dictConfig that routes every logger through structlog's formatter."""
    renderer = (
        structlog.dev.ConsoleRenderer(colors=False)
        if log_format == "console"
        else structlog.processors.JSONRenderer()
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "structured": {
                "()": structlog.stdlib.ProcessorFormatter,
                "processors": [
                    structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.processors.format_exc_info,
                    renderer,
                ],
                "foreign_pre_chain": SHARED_PROCESSORS,
            },
        },
        "handlers": {
            "stderr": {"class": "logging.StreamHandler", "formatter": "structured"},
        },
        "root": {"handlers": ["stderr"], "level": level},
        "loggers": {
            # Request lines come from django_structlog with the request id bound.
            "django.server": {"level": "WARNING"},
            "django.request": {"level": "ERROR"},
            "kafka": {"level": "WARNING"},
            "opensearch": {"level": "WARNING"},
            "urllib3": {"level": "WARNING"},
        },
    }


def configure_structlog() -> None:
    """Configure structlog to hand its events to the stdlib logging handlers."""
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *SHARED_PROCESSORS,
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    return structlog.get_logger(name)


logging.captureWarnings(True)
