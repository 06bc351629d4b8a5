"""Start the payment provider simulator for backend tests, with webhooks aimed at a given URL."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import requests

REPO = Path(__file__).resolve().parent.parent


class Provider:
    """A running simulator subprocess: its URL and its control API."""

    def __init__(self, process: subprocess.Popen, url: str, api_key: str, log_path: Path) -> None:
        self.process = process
        self.url = url
        self.log_path = log_path
        self.session = requests.Session()
        self.session.trust_env = False
        self.session.headers["Authorization"] = f"Bearer {api_key}"

    def control(self, method: str, path: str, **kwargs: Any) -> dict:
        response = self.session.request(method, f"{self.url}{path}", timeout=10, **kwargs)
        response.raise_for_status()
        return response.json()

    def reset(self, **faults: Any) -> None:
        self.control("POST", "/_control/reset")
        self.control("POST", "/_control/faults", json={"latency_ms": [1, 5], **faults})

    def set_faults(self, **faults: Any) -> None:
        self.control("POST", "/_control/faults", json=faults)

    def intents(self, merchant_reference: str) -> list[dict]:
        return self.control("GET", "/v1/payment_intents", params={"merchant_reference": merchant_reference})["data"]

    def stop(self) -> None:
        self.session.close()
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()


def start_provider(*, webhook_url: str, api_key: str, webhook_secret: str, log_dir: Path) -> Provider:
    """Start the simulator on a free loopback port and wait for its start line."""
    log_path = log_dir / "simulator.log"
    environment = {**os.environ, "PAYMENT_PROVIDER_API_KEY": api_key, "PAYMENT_WEBHOOK_SECRET": webhook_secret}
    command = [
        sys.executable, "-m", "payments.simulator",
        "--host", "127.0.0.1",
        "--port", "0",
        "--webhook-url", webhook_url,
        "--seed", "7",
    ]
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(command, cwd=REPO, env=environment, stdout=log_file, stderr=log_file)

    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        for line in log_path.read_text().splitlines():
            if '"simulator.started"' in line:
                port = json.loads(line)["port"]
                return Provider(process, f"http://127.0.0.1:{port}", api_key, log_path)
        if process.poll() is not None:
            break
        time.sleep(0.05)
    process.kill()
    raise RuntimeError(f"the payment simulator did not start; its log:\n{log_path.read_text()}")
