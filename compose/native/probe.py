"""Health probes for the Kafka and OpenSearch services of the native stack.

stack.sh calls this with the interpreter on PATH before the project's .venv
exists, so it uses only the standard library. Exit status 0 means healthy.
Otherwise the exit status is 1 and one line on stderr describes the failure.

Usage:
    python3 probe.py kafka HOST PORT [TIMEOUT_SECONDS]
    python3 probe.py opensearch URL [TIMEOUT_SECONDS]
"""

from __future__ import annotations

import json
import socket
import struct
import sys
import urllib.error
import urllib.request

# Kafka 4.0 removed Metadata v0-v3 (KIP-896). v4 is the oldest version that
# 4.x brokers accept and the newest one without flexible (tagged) fields.
METADATA_API_KEY = 3
METADATA_API_VERSION = 4
CORRELATION_ID = 7
CLIENT_ID = b"stack-probe"


class ProbeError(Exception):
    pass


class Reader:
    """Cursor over a Kafka response body in the non-flexible wire format."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.offset = 0

    def take(self, fmt: str):
        size = struct.calcsize(fmt)
        if self.offset + size > len(self.data):
            raise ProbeError("truncated Kafka metadata response")
        (value,) = struct.unpack_from(fmt, self.data, self.offset)
        self.offset += size
        return value

    def int16(self) -> int:
        return self.take(">h")

    def int32(self) -> int:
        return self.take(">i")

    def nullable_string(self) -> str | None:
        length = self.int16()
        if length < 0:
            return None
        raw = self.data[self.offset : self.offset + length]
        self.offset += length
        return raw.decode("utf-8")


def receive_exactly(sock: socket.socket, size: int) -> bytes:
    chunks = []
    remaining = size
    while remaining:
        chunk = sock.recv(remaining)
        if not chunk:
            raise ProbeError("broker closed the connection before responding")
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def build_metadata_request() -> bytes:
    header = struct.pack(
        ">hhih", METADATA_API_KEY, METADATA_API_VERSION, CORRELATION_ID, len(CLIENT_ID)
    ) + CLIENT_ID
    # A null topic array (-1) requests every topic, and auto-creation stays off.
    body = struct.pack(">ib", -1, 0)
    payload = header + body
    return struct.pack(">i", len(payload)) + payload


def probe_kafka(host: str, port: int, timeout: float) -> str:
    """Send a Metadata request and return a summary of the brokers it lists."""
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.settimeout(timeout)
        sock.sendall(build_metadata_request())
        (size,) = struct.unpack(">i", receive_exactly(sock, 4))
        reader = Reader(receive_exactly(sock, size))

    correlation_id = reader.int32()
    if correlation_id != CORRELATION_ID:
        raise ProbeError(f"unexpected correlation id {correlation_id} in Kafka response")

    reader.int32()  # throttle_time_ms
    brokers = []
    for _ in range(reader.int32()):
        node_id = reader.int32()
        broker_host = reader.nullable_string()
        broker_port = reader.int32()
        reader.nullable_string()  # rack
        brokers.append(f"{node_id}@{broker_host}:{broker_port}")
    cluster_id = reader.nullable_string()
    controller_id = reader.int32()
    topic_count = reader.int32()

    if not brokers:
        raise ProbeError("Kafka metadata response lists no live broker")
    return (
        f"brokers={','.join(brokers)} cluster_id={cluster_id} "
        f"controller_id={controller_id} topics={topic_count}"
    )


def probe_opensearch(url: str, timeout: float) -> str:
    """Return the cluster status if GET /_cluster/health reports green or yellow."""
    health_url = url.rstrip("/") + "/_cluster/health"
    with urllib.request.urlopen(health_url, timeout=timeout) as response:
        health = json.load(response)
    status = health.get("status")
    if status not in ("green", "yellow"):
        raise ProbeError(f"cluster status is {status!r}, expected green or yellow")
    return f"status={status} nodes={health.get('number_of_nodes')}"


def main(argv: list[str]) -> int:
    if len(argv) >= 3 and argv[0] == "kafka":
        timeout = float(argv[3]) if len(argv) > 3 else 3.0
        check = lambda: probe_kafka(argv[1], int(argv[2]), timeout)  # noqa: E731
    elif len(argv) >= 2 and argv[0] == "opensearch":
        timeout = float(argv[2]) if len(argv) > 2 else 3.0
        check = lambda: probe_opensearch(argv[1], timeout)  # noqa: E731
    else:
        print(__doc__.strip(), file=sys.stderr)
        return 2

    try:
        print(check())
    except (OSError, ProbeError, ValueError, urllib.error.URLError) as error:
        print(f"{argv[0]} probe failed: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
