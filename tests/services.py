"""Helpers for tests that stop and start real services of the native stack."""
from __future__ import annotations

import socket
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
STACK_SCRIPT = REPO / "compose" / "native" / "stack.sh"


def stack(action: str, service: str, timeout: int = 300) -> None:
    """Run `stack.sh ACTION SERVICE` and fail loudly with its output when it does not succeed."""
    result = subprocess.run(
        ["bash", str(STACK_SCRIPT), action, service],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"stack.sh {action} {service} failed:\n{result.stdout}\n{result.stderr}")


def closed_port() -> int:
    """Return a loopback port that nothing listens on (bound once, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
