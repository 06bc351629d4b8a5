"""Readiness probes for each real dependency.

Each probe returns None when the service responds, or a short reason when it
does not. Probes run in parallel with a per-probe timeout, so /readyz responds
within about READINESS_TIMEOUT_SECONDS even when every service hangs.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

import redis
from django.conf import settings
from django.db import connections

from commerce.logging import get_logger

log = get_logger(__name__)


def check_postgres(timeout: float) -> str | None:
    import psycopg

    # A fresh connection per probe: a pooled one could hide a server that just died.
    params = connections["default"].settings_dict
    with psycopg.connect(
        host=params["HOST"],
        port=params["PORT"] or 5432,
        dbname=params["NAME"],
        user=params["USER"],
        password=params["PASSWORD"],
        connect_timeout=max(1, int(timeout)),
    ) as connection:
        connection.execute("SELECT 1")
    return None


def check_redis(timeout: float) -> str | None:
    client = redis.Redis.from_url(
        settings.REDIS_URL, socket_connect_timeout=timeout, socket_timeout=timeout
    )
    try:
        client.ping()
    finally:
        client.close()
    return None


def check_kafka(timeout: float) -> str | None:
    from confluent_kafka.admin import AdminClient

    admin = AdminClient(
        {
            "bootstrap.servers": settings.KAFKA_BOOTSTRAP_SERVERS,
            "socket.connection.setup.timeout.ms": int(timeout * 1000),
            # librdkafka logs every refused connection; the probe reports it instead.
            "log_level": 0,
        }
    )
    metadata = admin.list_topics(timeout=timeout)
    if not metadata.brokers:
        return "no brokers in metadata"
    return None


def check_opensearch(timeout: float) -> str | None:
    from opensearchpy import OpenSearch

    client = OpenSearch(hosts=[settings.OPENSEARCH_URL], timeout=timeout, max_retries=0)
    try:
        health = client.cluster.health(request_timeout=timeout)
    finally:
        client.close()
    if health.get("status") not in {"green", "yellow"}:
        return f"cluster status {health.get('status')}"
    return None


PROBES: dict[str, Callable[[float], str | None]] = {
    "postgres": check_postgres,
    "redis": check_redis,
    "kafka": check_kafka,
    "opensearch": check_opensearch,
}


def _run_probe(name: str, probe: Callable[[float], str | None], timeout: float) -> dict:
    started = time.monotonic()
    try:
        reason = probe(timeout)
    except Exception as exc:  # noqa: BLE001 - any failure means "not ready", with its reason.
        reason = f"{type(exc).__name__}: {exc}"
    elapsed_ms = round((time.monotonic() - started) * 1000, 1)
    result = {"status": "up" if reason is None else "down", "latency_ms": elapsed_ms}
    if reason is not None:
        result["error"] = reason[:300]
    return result


def check_dependencies(timeout: float | None = None) -> dict[str, dict]:
    """Probe every dependency in parallel and return {name: {status, latency_ms, error?}}."""
    timeout = timeout if timeout is not None else settings.READINESS_TIMEOUT_SECONDS
    results: dict[str, dict] = {}
    # A pool per call: a hung probe must not occupy a shared worker for later requests.
    pool = ThreadPoolExecutor(max_workers=len(PROBES), thread_name_prefix="readyz")
    try:
        futures = {name: pool.submit(_run_probe, name, probe, timeout) for name, probe in PROBES.items()}
        deadline = time.monotonic() + timeout + 1.0
        for name, future in futures.items():
            try:
                results[name] = future.result(timeout=max(0.0, deadline - time.monotonic()))
            except FutureTimeout:
                results[name] = {"status": "down", "error": f"no answer within {timeout}s"}
    finally:
        pool.shutdown(wait=False, cancel_futures=True)

    down = [name for name, result in results.items() if result["status"] != "up"]
    if down:
        log.warning("dependencies_down", services=down)
    return results


def check_cdc(timeout: float | None = None) -> dict:
    """Collect relay and consumer lag for the `cdc` block of /readyz.

    Lag is information, not a readiness condition: a lagging relay or
    consumer must not take the API out of the load balancer, because checkout
    keeps working while events wait in the outbox. So this never raises, and
    a section that could not be collected contains an "error" instead.
    """
    from cdc.relay.config import RelayConfig
    from cdc.relay.status import collect_status

    timeout = timeout if timeout is not None else settings.READINESS_TIMEOUT_SECONDS
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="readyz-cdc")
    try:
        future = pool.submit(collect_status, slot=RelayConfig.from_settings().slot, timeout=timeout)
        # collect_status sends several requests in a row, each with `timeout`, so allow about two of them.
        return future.result(timeout=timeout * 2 + 1.0)
    except FutureTimeout:
        return {"error": f"timed out after {timeout * 2 + 1.0}s"}
    except Exception as exc:  # noqa: BLE001 - lag must never fail readiness, whatever went wrong.
        log.warning("cdc_status_failed", error=str(exc), error_type=type(exc).__name__)
        return {"error": f"{type(exc).__name__}: {exc}"[:300]}
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
