"""An S3 server that accepts a second create-only write: moto behind a proxy that drops
the If-None-Match header (what `probe_conditional_writes` catches)."""

from __future__ import annotations

import http.client
import http.server


class DropIfNoneMatch(http.server.BaseHTTPRequestHandler):
    """Forwards every request to `upstream` without its If-None-Match header: an
    S3-compatible server that accepts create-only writes and ignores them."""

    upstream: str = ""
    protocol_version = "HTTP/1.1"

    def _forward(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        headers = {k: v for k, v in self.headers.items() if k.lower() != "if-none-match"}
        conn = http.client.HTTPConnection(self.upstream, timeout=30)
        conn.request(self.command, self.path, body=body, headers=headers)
        reply = conn.getresponse()
        data = reply.read()
        self.send_response(reply.status)
        for name, value in reply.getheaders():
            if name.lower() not in ("content-length", "transfer-encoding", "connection"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        conn.close()

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _forward

    def log_message(self, *args) -> None:
        pass


def liar_proxy(upstream_url: str, port: int = 0) -> http.server.ThreadingHTTPServer:
    """A proxy (not yet serving) in front of `upstream_url` that drops If-None-Match."""
    handler = type(
        "Handler", (DropIfNoneMatch,), {"upstream": upstream_url.removeprefix("http://")}
    )
    return http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
