"""Slow clients (slowloris) cannot take a server's request threads: connections that send
nothing, a request head a byte at a time, or a body a byte at a time leave /health and the
API answering, and are closed by their deadline (REQUEST_READ_TIMEOUT_SEC).

Before, 100 such connections left /health unanswered for as long as they stayed open
(gunicorn's gthread reads a request on a thread, with blocking reads and no deadline)."""

from __future__ import annotations

import contextlib
import re
import socket
import threading
import time

import httpx
import pytest

from tests.e2e import wasm as w

THREADS = 4  # per worker: 3 × 12 slow connections would hold every one of them
READ_TIMEOUT = 3.0


@pytest.fixture
def server(make_server):
    env = {"THREADS": str(THREADS), "REQUEST_READ_TIMEOUT_SEC": str(READ_TIMEOUT)}
    server = make_server(env, workers=1).start()
    w.deploy_echo(server)
    return server


def _connect(server, first: bytes) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    sock.sendall(first)
    return sock


def _drip(socks: list[socket.socket], stop: threading.Event) -> None:
    while not stop.wait(0.5):
        for sock in socks:
            with contextlib.suppress(OSError):  # closed by the server
                sock.send(b"x")


def _closed_by_server(sock: socket.socket) -> bool:
    sock.settimeout(0.2)
    try:
        while data := sock.recv(65536):  # a 400 for a body cut short, then the close
            del data
        return True
    except TimeoutError:
        return False
    except OSError:
        return True  # reset


def test_slow_clients_leave_the_server_answering(server):
    key = server.api_key.encode()
    idle = [_connect(server, b"") for _ in range(12)]
    heads = [_connect(server, b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ") for _ in range(12)]
    bodies = [
        _connect(
            server,
            b"POST /api/v1/functions/echo/invoke HTTP/1.1\r\nHost: x\r\n"
            b"Authorization: Bearer " + key + b"\r\nContent-Type: application/json\r\n"
            b"Content-Length: 1000\r\n\r\n{",
        )
        for _ in range(12)
    ]
    stop = threading.Event()
    dripper = threading.Thread(target=_drip, args=(heads + bodies, stop), daemon=True)
    dripper.start()
    try:
        time.sleep(0.5)
        with server.client(timeout=2) as api:  # would time out with every thread held
            for _ in range(3):
                assert httpx.get(f"{server.url}/health", timeout=2).status_code == 200
                resp = api.post("/api/v1/functions/echo/invoke", json={"n": 1})
                assert resp.status_code == 200 and resp.json() == {"n": 1}
                time.sleep(0.3)
        time.sleep(READ_TIMEOUT + 2)  # the deadline, and the loop's once-a-second check
        stop.set()
        dripper.join()
        still_open = [s for s in idle + heads + bodies if not _closed_by_server(s)]
        assert not still_open, f"{len(still_open)} slow connections still open"
    finally:
        stop.set()
        for sock in idle + heads + bodies:
            sock.close()


def test_requests_in_pieces_and_kept_alive_connections_still_work(server):
    """What the loop reads for the thread: a head and body in pieces, a large body, two
    requests on one kept-alive connection, two pipelined in one send, `Expect: 100-continue`."""
    key = server.api_key.encode()

    def invoke(body: bytes, extra: bytes = b"") -> bytes:
        return (
            b"POST /api/v1/functions/echo/invoke HTTP/1.1\r\nHost: x\r\n"
            b"Authorization: Bearer " + key + b"\r\nContent-Type: application/json\r\n"
            + extra + b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
        )  # fmt: skip

    def answers(sock: socket.socket, count: int) -> list[bytes]:
        sock.settimeout(10)
        data = b""
        while data.count(b"HTTP/1.1 ") < count or not data.endswith(b"}"):
            piece = sock.recv(1 << 20)
            if not piece:
                break
            data += piece
        return re.findall(rb"HTTP/1\.1 \d+ [A-Za-z ]+(?=\r\n)", data)

    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        request = invoke(b'{"piece": 1}')
        for at in range(0, len(request), 7):  # in 7-byte pieces, 10 ms apart
            sock.sendall(request[at : at + 7])
            time.sleep(0.01)
        assert answers(sock, 1) == [b"HTTP/1.1 200 OK"]
        sock.sendall(invoke(b'{"again": 2}'))  # the same kept-alive connection
        assert answers(sock, 1) == [b"HTTP/1.1 200 OK"]
        sock.sendall(invoke(b'{"a": 1}') + invoke(b'{"b": 2}'))  # pipelined
        assert answers(sock, 2) == [b"HTTP/1.1 200 OK"] * 2
        # `Expect: 100-continue` (older curl, .NET): the body comes once the server asks;
        # waiting for it in the loop cost each such call the client's 1 s patience.
        request = invoke(b'{"expect": 3}', b"Expect: 100-continue\r\n")
        head, body = request.split(b"\r\n\r\n")
        sock.sendall(head + b"\r\n\r\n")
        sock.settimeout(0.5)
        assert sock.recv(100).startswith(b"HTTP/1.1 100 Continue")
        sock.sendall(body)
        assert answers(sock, 1) == [b"HTTP/1.1 200 OK"]
    large = b'{"big": "' + b"y" * 300_000 + b'"}'  # past what the loop reads itself
    with server.client() as api:
        resp = api.post(
            "/api/v1/functions/echo/invoke",
            content=large,
            headers={"Content-Type": "application/json"},
        )
        assert resp.status_code == 200 and len(resp.content) == len(large)
