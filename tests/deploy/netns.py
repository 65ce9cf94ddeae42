"""Reach a TCP address inside another network namespace from this one, over loopback.

The local engine (scripts/engine.sh) runs in a network namespace of its own
with no port forwarding (no iptables, no userland proxy), so a published port
answers nothing and a container's bridge address is routable only from inside
that namespace. `NamespaceRelay` listens on 127.0.0.1 here and opens each
upstream connection from a thread that has joined the engine's namespace
(setns(2) switches only the calling thread); the bytes are then pumped both ways.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import queue
import socket
import threading
from concurrent.futures import Future

_CLONE_NEWNET = 0x40000000


def _join_netns(pid: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY)
    try:
        if libc.setns(fd, _CLONE_NEWNET) != 0:
            errno = ctypes.get_errno()
            raise OSError(errno, f"setns into the network namespace of pid {pid}")
    finally:
        os.close(fd)


def _pump(src: socket.socket, dst: socket.socket) -> None:
    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:
        pass
    with contextlib.suppress(OSError):
        dst.shutdown(socket.SHUT_WR)


class NamespaceRelay:
    """127.0.0.1:<port> here → `target` as seen from the namespace of process `pid`."""

    def __init__(self, pid: int, target: tuple[str, int]) -> None:
        self.target = target
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._dials: queue.Queue[Future | None] = queue.Queue()
        joined: Future[None] = Future()
        threading.Thread(target=self._dialer, args=(pid, joined), daemon=True).start()
        joined.result(timeout=5)
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _dialer(self, pid: int, joined: Future) -> None:
        try:
            _join_netns(pid)
        except OSError as exc:
            joined.set_exception(exc)
            return
        joined.set_result(None)
        while (dial := self._dials.get()) is not None:
            try:
                dial.set_result(socket.create_connection(self.target, timeout=5))
            except OSError as exc:
                dial.set_exception(exc)

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # closed
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        dial: Future[socket.socket] = Future()
        self._dials.put(dial)
        try:
            upstream = dial.result(timeout=10)
        except OSError:
            client.close()
            return
        upstream.settimeout(None)
        back = threading.Thread(target=_pump, args=(upstream, client), daemon=True)
        back.start()
        _pump(client, upstream)
        back.join()
        client.close()
        upstream.close()

    def close(self) -> None:
        self._listener.close()
        self._dials.put(None)
