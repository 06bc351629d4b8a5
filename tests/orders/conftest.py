"""Fixtures for checkout and payment tests: a real provider simulator and a captured task queue."""
from __future__ import annotations

import pytest

from tests.provider import Provider, start_provider

API_KEY = "sk_test_backend"
WEBHOOK_SECRET = "whsec_test_backend"


@pytest.fixture(scope="session")
def provider_process(tmp_path_factory) -> Provider:
    # Webhooks go nowhere by default: tests deliver signed events themselves, in the order they choose.
    provider = start_provider(
        webhook_url="http://127.0.0.1:9/unused",
        api_key=API_KEY,
        webhook_secret=WEBHOOK_SECRET,
        log_dir=tmp_path_factory.mktemp("provider"),
    )
    yield provider
    provider.stop()


@pytest.fixture
def provider(provider_process: Provider, settings) -> Provider:
    """The simulator with empty state and webhooks off, and the backend pointed at it."""
    provider_process.reset(webhooks_enabled=False)
    settings.PAYMENT_PROVIDER_URL = provider_process.url
    settings.PAYMENT_PROVIDER_API_KEY = API_KEY
    settings.PAYMENT_PROVIDER_TIMEOUT_SECONDS = 1.0
    settings.PAYMENT_WEBHOOK_SECRET = WEBHOOK_SECRET
    return provider_process


class TaskQueue(list):
    """Capture and refund tasks the backend queued, as ("capture" | "refund", id) pairs."""

    def __init__(self, capture_callbacks) -> None:
        super().__init__()
        self._capture_callbacks = capture_callbacks

    def run(self, call):
        """Run `call` and then its on_commit callbacks, as a commit would.

        The test's own transaction never commits, so callbacks registered by a
        service that succeeded run here; a rolled-back block registered none.
        """
        with self._capture_callbacks(execute=True):
            return call()


@pytest.fixture
def queued_captures(monkeypatch, django_capture_on_commit_callbacks) -> TaskQueue:
    """Record capture and refund tasks instead of sending them to the broker; the test plays the worker."""
    from payments import tasks

    queue = TaskQueue(django_capture_on_commit_callbacks)
    monkeypatch.setattr(tasks.capture_payment, "delay", lambda intent_id: queue.append(("capture", intent_id)))
    monkeypatch.setattr(tasks.refund_payment, "delay", lambda refund_id: queue.append(("refund", refund_id)))
    return queue
