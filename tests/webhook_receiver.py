"""A real HTTP receiver on 127.0.0.1 for outgoing webhooks (alert notifications) in tests."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    path: str
    headers: dict[str, str]  # lower-case names
    body: bytes
    at: float  # time.time() on arrival

    @property
    def json(self) -> dict:
        return json.loads(self.body)

    def signed_with(self, secret: str) -> bool:
        """Whether X-Nimbus-Signature is the HMAC-SHA256 of the body with `secret`."""
        expected = "sha256=" + hmac.new(secret.encode(), self.body, hashlib.sha256).hexdigest()
        return hmac.compare_digest(self.headers.get("x-nimbus-signature", ""), expected)


class WebhookReceiver:
    """Records every POST; answers the given statuses in turn, then 200 (after `delay_sec`)."""

    def __init__(self, server: ThreadingHTTPServer, statuses: list[int], delay_sec: float) -> None:
        self.server = server
        self.statuses = list(statuses)
        self.delay_sec = delay_sec
        self.requests: list[Received] = []
        self.lock = threading.Lock()
        host, port = server.server_address[:2]
        self.url = f"http://{host}:{port}/hooks/nimbus"

    def wait_for(self, count: int, timeout: float = 30.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.requests) >= count:
                    return list(self.requests)
            time.sleep(0.05)
        with self.lock:
            return list(self.requests)


@contextmanager
def webhook_receiver(statuses: list[int] = (), delay_sec: float = 0.0) -> Iterator[WebhookReceiver]:
    holder: list[WebhookReceiver] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            receiver = holder[0]
            with receiver.lock:
                receiver.requests.append(Received(
                    self.path, {k.lower(): v for k, v in self.headers.items()}, body,
                    time.time()))  # fmt: skip
                status = receiver.statuses.pop(0) if receiver.statuses else 200
            time.sleep(receiver.delay_sec)
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args) -> None:  # quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    holder.append(WebhookReceiver(server, statuses, delay_sec))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield holder[0]
    finally:
        server.shutdown()
        server.server_close()
