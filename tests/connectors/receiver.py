"""A real HTTP receiver for webhook destinations: checks signatures, dedupes by Idempotency-Key, can fail."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.conftest import free_port

SECRET = "s3cret"


class Receiver:
    """What the receiver got: every request, and the batches it applied once each."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.applied: dict[str, dict[str, Any]] = {}
        self.fail_with: int | None = None
        """Answer every request with this status instead of applying it."""
        self.lock = threading.Lock()
        self.url = ""

    def rows(self) -> list[dict[str, Any]]:
        """Every row applied, in order."""
        return [row for batch in self.applied.values() for row in batch["rows"]]


def _check(signature: str, body: bytes) -> bool:
    parts = dict(p.split("=", 1) for p in signature.split(","))
    expected = hmac.new(SECRET.encode(), f"{parts['t']}.".encode() + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(parts["v1"], expected)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            key = self.headers["Idempotency-Key"]
            with state.lock:
                state.requests.append({"key": key, "body": json.loads(body)})
                if not _check(self.headers.get("X-Tailor-Signature", "t=0,v1="), body):
                    status = 401
                elif state.fail_with is not None:
                    status = state.fail_with
                else:
                    state.applied.setdefault(key, json.loads(body))  # applied once per key
                    status = 200
            self.send_response(status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()
