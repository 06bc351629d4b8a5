"""A real simulator subprocess and a local webhook receiver, both on loopback, for the payments tests.

None of these tests touch the database. The simulator is started once per
session and reset before each test, and the receiver collects every webhook
the simulator sends.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests

from payments.gateway import SimulatorGateway

REPO = Path(__file__).resolve().parents[2]
API_KEY = "sk_test_simulator_key"
WEBHOOK_SECRET = "whsec_test_simulator_secret"
START_TIMEOUT_SECONDS = 15.0


@dataclass(frozen=True)
class ReceivedWebhook:
    body: bytes
    headers: dict[str, str]
    received_at: float

    @property
    def event(self) -> dict[str, Any]:
        return json.loads(self.body)


class WebhookReceiver:
    """HTTP server on 127.0.0.1 that stores each POST, or responds with HTTP 500 when told to fail."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._received: list[ReceivedWebhook] = []
        self._failures_left = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - name fixed by BaseHTTPRequestHandler
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                status = receiver._record(body, dict(self.headers.items()))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/webhooks/provider/"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def fail_next(self, count: int) -> None:
        """Respond to the next `count` deliveries with HTTP 500 and do not store them."""
        with self._lock:
            self._failures_left = count

    def clear(self) -> None:
        with self._lock:
            self._received.clear()
            self._failures_left = 0

    def received(self, payment_intent: str | None = None) -> list[ReceivedWebhook]:
        """Return the stored deliveries in arrival order, optionally only those about one intent."""
        with self._lock:
            items = list(self._received)
        if payment_intent is None:
            return items
        return [item for item in items if item.event["data"]["object"].get("id") == payment_intent]

    def wait_for(
        self,
        predicate: Callable[[list[ReceivedWebhook]], bool],
        *,
        payment_intent: str | None = None,
        timeout: float = 5.0,
    ) -> list[ReceivedWebhook]:
        """Poll until `predicate` holds for the stored deliveries; return them either way."""
        deadline = time.monotonic() + timeout
        while True:
            items = self.received(payment_intent)
            if predicate(items) or time.monotonic() > deadline:
                return items
            time.sleep(0.02)

    def _record(self, body: bytes, headers: dict[str, str]) -> int:
        with self._lock:
            if self._failures_left > 0:
                self._failures_left -= 1
                return 500
            self._received.append(ReceivedWebhook(body=body, headers=headers, received_at=time.monotonic()))
            return 200


class RunningSimulator:
    """Handle on the simulator subprocess: its URL, its log file and its control API."""

    def __init__(self, process: subprocess.Popen[bytes], url: str, log_path: Path) -> None:
        self.process = process
        self.url = url
        self.log_path = log_path
        self.session = requests.Session()
        self.session.trust_env = False
        self.session.headers["Authorization"] = f"Bearer {API_KEY}"

    def call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return self.session.request(method, f"{self.url}{path}", timeout=5, **kwargs)

    def set_faults(self, **faults: Any) -> dict[str, Any]:
        response = self.call("POST", "/_control/faults", json=faults)
        assert response.status_code == 200, response.text
        return response.json()

    def deliveries(self, payment_intent: str | None = None) -> list[dict[str, Any]]:
        params = {"payment_intent": payment_intent} if payment_intent else None
        response = self.call("GET", "/_control/webhooks", params=params)
        assert response.status_code == 200, response.text
        return response.json()["data"]

    def log_lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.log_path.read_text().splitlines() if line.strip()]


def _wait_for_start(process: subprocess.Popen[bytes], log_path: Path) -> int:
    """Return the port from the simulator's start line, or fail with its log when it does not start."""
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        for line in log_path.read_text().splitlines():
            if '"simulator.started"' in line:
                return json.loads(line)["port"]
        if process.poll() is not None:
            break
        time.sleep(0.05)
    process.kill()
    pytest.fail(f"the simulator did not start within {START_TIMEOUT_SECONDS} s; its log:\n{log_path.read_text()}")


@pytest.fixture(scope="session")
def webhook_receiver() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver()
    receiver.start()
    yield receiver
    receiver.stop()


@pytest.fixture(scope="session")
def simulator_process(
    webhook_receiver: WebhookReceiver, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningSimulator]:
    log_path = tmp_path_factory.mktemp("simulator") / "simulator.log"
    command = [
        sys.executable, "-m", "payments.simulator",
        "--host", "127.0.0.1",
        "--port", "0",
        "--webhook-url", webhook_receiver.url,
        "--seed", "20240601",
        "--webhook-max-attempts", "4",
        "--webhook-retry-base-ms", "50",
        "--webhook-retry-max-ms", "400",
        "--webhook-timeout-seconds", "2",
    ]
    # The key and the secret go through the environment, which is also how the log test proves they never leak.
    environment = {
        **os.environ,
        "PAYMENT_PROVIDER_API_KEY": API_KEY,
        "PAYMENT_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "PAYMENT_PROVIDER_LATENCY_MS": "20,80",
    }
    with log_path.open("wb") as log_file:
        # stderr goes to a file, not a pipe, because an undrained pipe would block the simulator once full.
        process = subprocess.Popen(command, cwd=REPO, env=environment, stdout=log_file, stderr=log_file)
    port = _wait_for_start(process, log_path)
    simulator = RunningSimulator(process, f"http://127.0.0.1:{port}", log_path)

    yield simulator

    simulator.session.close()
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)


@pytest.fixture
def simulator(simulator_process: RunningSimulator, webhook_receiver: WebhookReceiver) -> RunningSimulator:
    """The shared simulator with empty state, default faults and an empty receiver."""
    response = simulator_process.call("POST", "/_control/reset")
    assert response.status_code == 200, response.text
    webhook_receiver.clear()
    return simulator_process


@pytest.fixture
def gateway(simulator: RunningSimulator) -> Iterator[SimulatorGateway]:
    with SimulatorGateway(simulator.url, API_KEY, timeout_seconds=2.0) as client:
        yield client
