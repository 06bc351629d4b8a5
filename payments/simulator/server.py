"""HTTP transport of the simulator on the standard library's ThreadingHTTPServer."""
from __future__ import annotations

import json
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from payments.simulator.app import Request, Response, SimulatorApp
from payments.simulator.errors import ApiError

MAX_BODY_BYTES = 1024 * 1024


class SimulatorServer(ThreadingHTTPServer):
    """One thread per connection; daemon threads so that a stop does not wait for delayed responses."""

    daemon_threads = True
    allow_reuse_address = True
    # The standard library's backlog of 5 drops connections under a load test's bursts.
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], app: SimulatorApp, logger: Any) -> None:
        self.app = app
        self.logger = logger
        super().__init__(address, SimulatorRequestHandler)


class SimulatorRequestHandler(BaseHTTPRequestHandler):
    # HTTP/1.1 keeps connections alive, as a requests.Session expects.
    protocol_version = "HTTP/1.1"
    server_version = "PaymentProviderSimulator/1.0"
    # An idle keep-alive connection releases its thread after this many seconds.
    timeout = 60
    server: SimulatorServer

    def do_GET(self) -> None:  # noqa: N802 - name fixed by BaseHTTPRequestHandler
        self._serve()

    def do_POST(self) -> None:  # noqa: N802
        self._serve()

    def do_PUT(self) -> None:  # noqa: N802
        self._serve()

    def do_PATCH(self) -> None:  # noqa: N802
        self._serve()

    def do_DELETE(self) -> None:  # noqa: N802
        self._serve()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - signature fixed by the base class
        # The default access log is unstructured text; each request gets a JSON line from _serve instead.
        return

    def _serve(self) -> None:
        started = time.monotonic()
        url = urlsplit(self.path)
        try:
            body = self._read_body()
            request = Request(
                method=self.command, path=url.path, query=url.query, headers=self.headers, body=body
            )
            response = self.server.app.handle(request)
        except ApiError as error:
            response = Response(error.status, error.body(), log_fields={"error_code": error.code})
        except Exception:  # noqa: BLE001 - a bug in one request must not kill the connection thread silently
            self.server.logger.exception("request.crashed", method=self.command, path=url.path)
            response = Response(
                500,
                ApiError(500, "internal_error", "the simulator failed unexpectedly", error_type="api_error").body(),
            )

        if response.delay_seconds:
            time.sleep(response.delay_seconds)
        delivered = self._write(response)

        fields = {
            "method": self.command,
            "path": url.path,
            "status": response.status,
            "duration_ms": round((time.monotonic() - started) * 1000, 1),
            **{name: value for name, value in response.log_fields.items() if value is not None},
        }
        if not delivered:
            self.server.logger.warning("request.response_not_delivered", reason="client closed the connection", **fields)
        elif response.status >= 500:
            self.server.logger.warning("request.completed", **fields)
        else:
            self.server.logger.info("request.completed", **fields)

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self.close_connection = True
            raise ApiError(411, "length_required", "chunked request bodies are not supported; send Content-Length")
        length_text = self.headers.get("Content-Length", "0")
        if not length_text.isdigit():
            self.close_connection = True
            raise ApiError(400, "invalid_request", f"Content-Length {length_text!r} is not a number")
        length = int(length_text)
        if length > MAX_BODY_BYTES:
            # The unread body would be parsed as the next request, so the connection is closed.
            self.close_connection = True
            raise ApiError(413, "request_too_large", f"request body of {length} bytes exceeds {MAX_BODY_BYTES}")
        return self.rfile.read(length) if length else b""

    def _write(self, response: Response) -> bool:
        """Send the response and return False when the client had already gone."""
        payload = json.dumps(response.body, separators=(",", ":")).encode("utf-8")
        try:
            self.send_response(response.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            for name, value in response.headers.items():
                self.send_header(name, value)
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(payload)
            self.wfile.flush()
            return True
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
            self.close_connection = True
            return False
