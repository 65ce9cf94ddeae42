"""The worker's end of the agent protocol (sandbox/agent/agent.c has the other end).

A worker listens on a unix socket in a directory it bind-mounts read-only at
/run/nimbus in a new container; the agent connects once, says hello with the
token the container was given, gets argv[0] and the environment, then serves
calls one at a time over that connection. The socket file is unlinked as
soon as the agent is connected, so the function can never reach it.

PERF(native): one warm call is one request frame and a few response frames
over a unix socket; the agent forks and execs the binary. No engine API call
is on the warm path.
"""

from __future__ import annotations

import contextlib
import os
import select
import socket
import struct
import time
from dataclasses import dataclass, field
from pathlib import Path

from ._docker_config import AGENT_VERSION

SOCKET_NAME = "host.sock"

# Statuses in the agent's 'R' frame.
EXITED, SIGNALED, TIMED_OUT, TOO_LARGE, MEMORY, SPAWN_FAILED = range(6)
DIRTY = 1  # flag: leftovers could not be cleaned up, retire the container

_HEAD = struct.Struct("<cI")
_REQUEST = struct.Struct("<cIIIII")
_REPLY = struct.Struct("<IiIII")
_IO_CHUNK = 256 * 1024


class AgentGone(Exception):
    """The agent closed the connection or broke the protocol: its container is dead."""


class AgentSilent(Exception):
    """The agent did not answer in time."""


@dataclass
class AgentReply:
    status: int
    code: int
    duration_ms: float
    dirty: bool
    log_dropped: int
    stdout: bytes
    stderr: bytes
    # Set by the worker: the round trip as the caller saw it.
    elapsed_ms: float = field(default=0.0)


class AgentListener:
    """The socket a new container's agent connects to, in its own directory.

    NOTE(native): paths go through `/proc/self/fd/N/` of the directory so that a
    deep DATA_DIR cannot exceed the 108 bytes a unix socket address may have.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(mode=0o755, parents=True, exist_ok=False)
        self._dir_fd = os.open(directory, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self._sock.bind(self._short(SOCKET_NAME))
            # The agent runs as an unprivileged user: it needs write access to connect.
            os.chmod(SOCKET_NAME, 0o777, dir_fd=self._dir_fd)
            self._sock.listen(1)
        except BaseException:
            self.close()
            raise

    def _short(self, name: str) -> str:
        return f"/proc/self/fd/{self._dir_fd}/{name}"

    def accept(self, token: str, timeout: float) -> AgentChannel:
        """Wait for the agent's connection and hello; then unlink the socket."""
        self._sock.settimeout(timeout)
        try:
            conn, _ = self._sock.accept()
        except TimeoutError:
            raise AgentSilent(f"the agent did not connect within {timeout:g} s") from None
        finally:
            self._unlink()
        channel = AgentChannel(conn)
        try:
            kind, hello = channel.read_frame(time.monotonic() + timeout)
            words = hello.decode(errors="replace").split()
            if kind != b"H" or words[:3] != ["nimbus-agent", AGENT_VERSION, token]:
                raise AgentGone(f"unexpected hello from the agent: {hello[:200]!r}")
            channel.oom_detection = "oom=1" in words
        except BaseException:
            channel.close()
            raise
        return channel

    def _unlink(self) -> None:
        with contextlib.suppress(OSError):
            os.unlink(SOCKET_NAME, dir_fd=self._dir_fd)

    def close(self) -> None:
        self._unlink()
        self._sock.close()
        with contextlib.suppress(OSError):
            os.close(self._dir_fd)
        with contextlib.suppress(OSError):
            # Still bind-mounted into the container; the mount keeps its own reference.
            self.directory.rmdir()


class AgentChannel:
    """One connected agent: configure it once, then call it any number of times."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._sock.setblocking(False)
        self._buf = bytearray()
        self.oom_detection = False

    def configure(self, argv0: str, env: dict[str, str]) -> None:
        parts = [argv0.encode()] + [f"{k}={v}".encode() for k, v in env.items()]
        if any(b"\0" in p for p in parts):
            raise ValueError("argv[0] and environment variables cannot contain NUL")
        payload = b"".join(p + b"\0" for p in parts)
        self._sock.setblocking(True)
        try:
            self._sock.sendall(_HEAD.pack(b"C", len(payload)) + payload)
        except OSError as exc:
            raise AgentGone(f"the agent went away: {exc}") from None
        finally:
            self._sock.setblocking(False)

    def alive(self) -> bool:
        """An idle agent never writes: anything readable (EOF included) means it died."""
        poller = select.poll()
        poller.register(self._sock, select.POLLIN | select.POLLHUP | select.POLLERR)
        return not poller.poll(0)

    def call(
        self,
        event: bytes,
        context: bytes,
        *,
        timeout_sec: float,
        out_limit: int,
        log_limit: int,
        grace_sec: float,
    ) -> AgentReply:
        """Run the function once, with `context` (JSON) as NIMBUS_CONTEXT. The agent
        enforces the deadline and the caps; `grace_sec` past the deadline a silent
        agent raises `AgentSilent`."""
        timeout_ms = max(1, int(timeout_sec * 1000))
        header = _REQUEST.pack(b"Q", timeout_ms, out_limit, log_limit, len(context), len(event))
        pending = memoryview(header + context + event)
        started = time.monotonic()
        deadline = started + timeout_sec + grace_sec
        stdout: list[bytes] = []
        stderr: list[bytes] = []
        poller = select.poll()
        fd = self._sock.fileno()
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AgentSilent(f"no answer {grace_sec:g} s past the deadline")
            poller.register(fd, select.POLLIN | (select.POLLOUT if pending else 0))
            events = poller.poll(left * 1000)
            if not events:
                continue
            revents = events[0][1]
            if pending and revents & select.POLLOUT:
                try:
                    sent = self._sock.send(pending[:_IO_CHUNK])
                except BlockingIOError:
                    sent = 0
                except OSError as exc:
                    raise AgentGone(f"the agent went away: {exc}") from None
                pending = pending[sent:]
            if revents & (select.POLLIN | select.POLLHUP | select.POLLERR):
                try:
                    data = self._sock.recv(_IO_CHUNK)
                except BlockingIOError:
                    continue
                except OSError as exc:
                    raise AgentGone(f"the agent went away: {exc}") from None
                if not data:
                    raise AgentGone("the agent closed the connection")
                self._buf += data
                while (frame := self._next_frame()) is not None:
                    kind, payload = frame
                    if kind == b"O":
                        stdout.append(payload)
                    elif kind == b"E":
                        stderr.append(payload)
                    elif kind == b"R" and len(payload) == _REPLY.size:
                        status, code, duration_us, flags, dropped = _REPLY.unpack(payload)
                        if pending or self._buf:
                            raise AgentGone("the agent answered before taking the whole event")
                        return AgentReply(
                            status=status,
                            code=code,
                            duration_ms=duration_us / 1000,
                            dirty=bool(flags & DIRTY),
                            log_dropped=dropped,
                            stdout=b"".join(stdout),
                            stderr=b"".join(stderr),
                            elapsed_ms=(time.monotonic() - started) * 1000,
                        )
                    else:
                        raise AgentGone(f"unexpected frame {kind!r} from the agent")

    def _next_frame(self) -> tuple[bytes, bytes] | None:
        """The complete frame at the front of the buffer, taken out of it; None if none."""
        buf = self._buf
        if len(buf) < _HEAD.size:
            return None
        kind, length = _HEAD.unpack_from(buf)
        end = _HEAD.size + length
        if len(buf) < end:
            return None
        payload = bytes(buf[_HEAD.size : end])
        del buf[:end]
        return kind, payload

    def read_frame(self, deadline: float) -> tuple[bytes, bytes]:
        """One whole frame (used for the hello)."""
        while True:
            frame = self._next_frame()
            if frame is not None:
                return frame
            left = deadline - time.monotonic()
            if left <= 0:
                raise AgentSilent("the agent did not say hello in time")
            ready, _, _ = select.select([self._sock], [], [], left)
            if not ready:
                continue
            data = self._sock.recv(_IO_CHUNK)
            if not data:
                raise AgentGone("the agent closed the connection before its hello")
            self._buf += data

    def close(self) -> None:
        """Closing the connection ends the agent, and so its container."""
        with contextlib.suppress(OSError):
            self._sock.close()
