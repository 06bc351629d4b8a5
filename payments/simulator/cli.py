"""Command line entry point: ``python -m payments.simulator``."""
from __future__ import annotations

import argparse
import logging
import os
import random
import signal
import sys
import threading
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import structlog

from payments.simulator.app import SimulatorApp
from payments.simulator.faults import Faults
from payments.simulator.idempotency import IdempotencyStore
from payments.simulator.server import SimulatorServer
from payments.simulator.state import ProviderState
from payments.simulator.webhooks import RetryPolicy, WebhookDispatcher

DEFAULT_PORT = 28100
DEFAULT_WEBHOOK_URL = "http://127.0.0.1:28000/api/v1/payments/webhooks/provider/"
DEFAULT_WEBHOOK_SECRET = "whsec_local_demo"
DEFAULT_API_KEY = "sk_local_demo"


def build_logger() -> Any:
    """Return a logger that writes one JSON object per line to stderr.

    The logger is built locally instead of through structlog.configure, so that
    importing the simulator inside another process leaves that process's
    logging configuration alone.
    """
    return structlog.wrap_logger(
        structlog.PrintLogger(file=sys.stderr),
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
        context_class=dict,
    ).bind(logger="payments.simulator")


def _latency_range(text: str) -> tuple[int, int]:
    low, separator, high = text.partition(",")
    if not separator or not low.strip().isdigit() or not high.strip().isdigit():
        raise argparse.ArgumentTypeError(f"expected MIN,MAX in milliseconds, got {text!r}")
    if int(low) > int(high):
        raise argparse.ArgumentTypeError(f"minimum {low} is greater than maximum {high}")
    return int(low), int(high)


def _positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return int(text)


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text!r}")
    return value


def build_parser(environ: Mapping[str, str] = os.environ) -> argparse.ArgumentParser:
    # Defaults stay strings where they come from the environment, because
    # argparse converts string defaults with the option's type and so reports
    # a bad variable like a bad option.
    parser = argparse.ArgumentParser(
        prog="python -m payments.simulator",
        description="Run the payment provider simulator. Options default to the environment variables shown.",
    )
    parser.add_argument(
        "--host",
        default=environ.get("PAYMENT_PROVIDER_HOST", "127.0.0.1"),
        help="address to listen on (PAYMENT_PROVIDER_HOST, default 127.0.0.1)",
    )
    parser.add_argument(
        "--port",
        type=int,
        default=environ.get("PAYMENT_PROVIDER_PORT", str(DEFAULT_PORT)),
        help=f"TCP port; 0 picks a free port and logs it (PAYMENT_PROVIDER_PORT, default {DEFAULT_PORT})",
    )

    parser.add_argument(
        "--webhook-url",
        default=environ.get("PAYMENT_WEBHOOK_URL", DEFAULT_WEBHOOK_URL),
        help="URL that receives signed webhook events; empty disables delivery (PAYMENT_WEBHOOK_URL)",
    )

    parser.add_argument(
        "--webhook-secret",
        default=environ.get("PAYMENT_WEBHOOK_SECRET", DEFAULT_WEBHOOK_SECRET),
        help="HMAC secret for the Provider-Signature header; prefer the environment variable, "
        "because arguments are visible to other users in the process list (PAYMENT_WEBHOOK_SECRET)",
    )
    parser.add_argument(
        "--api-key",
        default=environ.get("PAYMENT_PROVIDER_API_KEY", DEFAULT_API_KEY),
        help="bearer token that clients must send (PAYMENT_PROVIDER_API_KEY)",
    )

    parser.add_argument(
        "--seed",
        type=int,
        default=environ.get("PAYMENT_PROVIDER_SEED") or None,
        help="seed of the generator behind latency, fault rates and shuffles; object ids stay random "
        "(PAYMENT_PROVIDER_SEED, default: unseeded)",
    )
    parser.add_argument(
        "--latency-ms",
        type=_latency_range,
        default=environ.get("PAYMENT_PROVIDER_LATENCY_MS", "20,80"),
        metavar="MIN,MAX",
        help="random delay of every /v1 request in milliseconds (PAYMENT_PROVIDER_LATENCY_MS, default 20,80)",
    )

    parser.add_argument(
        "--webhook-max-attempts",
        type=_positive_int,
        default=8,
        help="delivery attempts per event before it is marked failed (default 8)",
    )
    parser.add_argument(
        "--webhook-retry-base-ms",
        type=_positive_int,
        default=500,
        help="wait after the first failed delivery, doubled after each further failure (default 500 ms)",
    )
    parser.add_argument(
        "--webhook-retry-max-ms",
        type=_positive_int,
        default=30_000,
        help="maximum wait between two delivery attempts (default 30000 ms)",
    )
    parser.add_argument(
        "--webhook-timeout-seconds",
        type=_positive_seconds,
        default=5.0,
        help="time the receiver has to respond to one delivery (default 5 s)",
    )
    return parser


def _redact_url(url: str) -> str:
    """Return `url` without user and password, which must not reach the log."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logger = build_logger()
    if not args.api_key or not args.webhook_secret:
        logger.error("simulator.start_failed", error="the API key and the webhook secret must not be empty")
        return 2

    rng = random.Random(args.seed)
    # The delivery thread gets its own generator, so its shuffles do not race the request threads' draws.
    dispatcher_rng = random.Random(rng.getrandbits(64))
    retry_policy = RetryPolicy(
        max_attempts=args.webhook_max_attempts,
        base_delay_seconds=args.webhook_retry_base_ms / 1000.0,
        max_delay_seconds=args.webhook_retry_max_ms / 1000.0,
        request_timeout_seconds=args.webhook_timeout_seconds,
    )
    try:
        dispatcher = WebhookDispatcher(
            url=args.webhook_url, secret=args.webhook_secret, logger=logger, retry_policy=retry_policy, rng=dispatcher_rng
        )
    except ValueError as error:
        logger.error("simulator.start_failed", error=str(error))
        return 2
    state = ProviderState(default_faults=Faults(latency_ms=args.latency_ms), rng=rng, publish=dispatcher.publish)
    app = SimulatorApp(
        api_key=args.api_key, state=state, idempotency=IdempotencyStore(), dispatcher=dispatcher, logger=logger
    )

    try:
        server = SimulatorServer((args.host, args.port), app, logger)
    except OSError as error:
        logger.error("simulator.start_failed", host=args.host, port=args.port, error=str(error))
        return 1

    def request_stop(signal_number: int, _frame: Any) -> None:
        logger.info("simulator.stopping", signal=signal.Signals(signal_number).name)
        # shutdown() waits for serve_forever to return, so it must run outside
        # the main thread, which is the one running serve_forever.
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)

    dispatcher.start()
    host, port = server.server_address[:2]
    logger.info(
        "simulator.started",
        host=host,
        port=port,
        webhook_url=_redact_url(args.webhook_url) or None,
        seed=args.seed,
        latency_ms=list(args.latency_ms),
        webhook_max_attempts=args.webhook_max_attempts,
    )
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
        undelivered = dispatcher.stop()
        logger.info("simulator.stopped", undelivered_webhooks=undelivered, **state.counts())
    return 0
