"""`nimbus serve`: the Falcon app under gunicorn (gthread workers)."""

from __future__ import annotations

import contextlib
import errno
import gc
import logging
import os
import re
import select
import selectors
import shutil
import signal
import socket
import sys
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

from gunicorn import glogging
from gunicorn.app.base import BaseApplication
from gunicorn.http.body import LengthReader
from gunicorn.workers.gthread import TConn, ThreadWorker

from store.errors import NimbusError

from .api.auth import ensure_api_key, key_file, read_api_key
from .settings import Settings, SettingsError
from .store_check import STORE_REFUSAL, store_refused, store_to_probe


class NimbusServer(BaseApplication):
    def __init__(self, settings: Settings, metrics_dir: Path) -> None:
        self.settings = settings
        self.metrics_dir = metrics_dir
        self.platform = None
        self._stop_signal = threading.Event()  # the worker's SIGTERM: see signal_stop
        super().__init__()

    def load_config(self) -> None:
        s = self.settings
        options = {
            "bind": f"{s.host}:{s.port}",
            "workers": s.workers,
            "worker_class": DrainingThreadWorker,
            "threads": s.threads,
            "graceful_timeout": int(s.graceful_timeout_sec),
            "timeout": 60,
            "keepalive": 5,
            "loglevel": s.log_level,
            "logger_class": ServerLog,
            "proc_name": "nimbus",
            "control_socket_disable": True,  # one per machine by default; we need none
            "post_worker_init": self._post_worker_init,
            "worker_exit": self._worker_exit,
            "child_exit": self._child_exit,
        }
        for key, value in options.items():
            self.cfg.set(key, value)
        DrainingThreadWorker.read_timeout_sec = s.request_read_timeout_sec  # before the fork

    def load(self):
        # NOTE: runs in each worker after fork (no preload): the wasmtime
        # Engine and background threads must never be made in the master.
        from .api.app import create_app
        from .platform import Platform

        self.platform = Platform.open(self.settings, metrics_dir=self.metrics_dir)
        self.platform.start()
        app = create_app(self.platform, read_api_key(self.settings))
        freeze_startup_objects()
        return app

    def _post_worker_init(self, worker) -> None:
        if self.platform is not None:
            self.platform.sandbox.on_stuck_threads = replace_this_worker
            threading.Thread(target=self._stop_when_signalled, name="stop-on-signal",
                             daemon=True).start()  # fmt: skip

    def signal_stop(self) -> None:
        """In the worker's SIGTERM handler: the background rooms start handing back their
        work now, while the HTTP calls in flight drain (gunicorn's drain, then
        `worker_exit`, share the one GRACEFUL_TIMEOUT_SEC the master allows).
        NOTE: only an Event is set here; a thread started in a signal handler can deadlock
        on `threading`'s own lock, held by the interrupted main thread (starting one)."""
        self._stop_signal.set()

    def _stop_when_signalled(self) -> None:
        self._stop_signal.wait()
        if self.platform is not None:
            self.platform.begin_stop(self.cfg.graceful_timeout - _EXIT_MARGIN_SEC)

    def _worker_exit(self, server, worker) -> None:
        if self.platform is None:
            return
        # What is left of the master's GRACEFUL_TIMEOUT_SEC since it signalled this worker.
        since = getattr(worker, "stop_signalled_at", None)
        spent = 0.0 if since is None else time.monotonic() - since
        exiting = sys.exc_info()[1]  # gunicorn calls this as the worker exits (SystemExit)
        try:
            self.platform.stop(self.cfg.graceful_timeout - spent - _EXIT_MARGIN_SEC)
        except Exception:
            logging.getLogger("nimbus.serve").exception("stopping the worker failed")
        exit_now(exiting)

    def _child_exit(self, server, worker) -> None:
        # In the master, for every worker that exits, even one killed with -9.
        from .telemetry.metrics import mark_worker_dead

        mark_worker_dead(self.metrics_dir, worker.pid)


class DrainingThreadWorker(ThreadWorker):
    """gunicorn's gthread worker, with two changes.

    **A stopping worker drains its backlog.** It takes the connections already
    waiting in the listening socket's backlog and then closes its copy of the socket
    at once, not after its drain. A client whose connection the kernel completed
    before the stop is served like any call in flight; once the master (which closes
    its copy first) and every worker have closed theirs, a new connection is refused
    at once (ECONNREFUSED: the client knows its request was never read). Before, the
    kernel kept completing handshakes into the backlog of a socket no one accepted
    from, for as long as the calls in flight took, then reset them all: clients that
    had sent a request saw it reset, not knowing whether it ran (measured: 16 of 16
    busy clients' next calls). A worker replaced alone (SIGTERM to it) changes nothing
    for clients: the others still hold the socket.

    **Slow clients cannot hold its threads** (NOTE(security)). gthread gives each new
    connection a thread that waits up to 5 s for a first byte, then reads the request
    with blocking reads and no deadline: 100 idle connections, or 100 that send a
    header byte every 2 s, left /health unanswered for as long as they stayed
    (measured: 5 of 5 health checks timed out at 8 s, with 2 workers × 22 threads).
    Here the worker's own loop reads each request's head (new and kept-alive
    connections alike) and a small body (≤ 64 KiB, of a known length) without
    blocking, and hands the connection to a thread only once it has them; a request
    not read by then `read_timeout_sec` after its connection was accepted (or became
    readable again) is closed. What a thread reads itself still has a deadline
    (`ReadDeadlines`): a head the loop did not see whole (pipelined behind another
    request) within `read_timeout_sec`, a larger body at `_MIN_BODY_RATE` on average
    after that much grace. Past it the loop shuts the socket's reading side, so the
    blocked read ends (a head: the connection closes; a body: the application sees
    it end early, 400).
    """

    read_timeout_sec = 10.0  # REQUEST_READ_TIMEOUT_SEC, set before the fork

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.reads = ReadDeadlines()
        self.heads: deque[TConn] = deque()  # connections whose head the loop is reading
        self.stop_signalled_at: float | None = None  # monotonic: the SIGTERM (or SIGQUIT)

    def handle_exit(self, sig, frame) -> None:
        """SIGTERM: the graceful stop. The master SIGKILLs this worker GRACEFUL_TIMEOUT_SEC
        from now; its background work starts stopping at once (`begin_stop`)."""
        super().handle_exit(sig, frame)
        if self.stop_signalled_at is None:
            self.stop_signalled_at = time.monotonic()
            if (signal_stop := getattr(self.app, "signal_stop", None)) is not None:
                signal_stop()

    def handle_quit(self, sig, frame) -> None:
        """SIGQUIT or SIGINT (the quick stop): exits from here (`worker_exit` runs)."""
        if self.stop_signalled_at is None:
            self.stop_signalled_at = time.monotonic()
        super().handle_quit(sig, frame)

    def set_accept_enabled(self, enabled: bool) -> None:
        super().set_accept_enabled(enabled)
        if enabled or self.alive:
            return
        for listener in self.sockets:
            for _ in range(self.cfg.backlog):
                if not select.select([listener], [], [], 0)[0]:
                    break
                self.accept(listener)  # another worker may take it first: EAGAIN, ignored
            listener.close()  # idempotent: gunicorn closes them again at the end

    def accept(self, listener) -> None:
        if self.cfg.is_ssl:  # the loop reads plain HTTP; TLS is gunicorn's own way (unused)
            super().accept(listener)
            return
        try:
            client, address = listener.accept()
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise
            return
        self.nr_conns += 1
        self._read_head(TConn(self.cfg, client, address, listener.getsockname()))

    def on_client_socket_readable(self, conn, client) -> None:
        """A kept-alive connection's next request."""
        if self.cfg.is_ssl:
            super().on_client_socket_readable(conn, client)
            return
        self.poller.unregister(client)
        self.keepalived_conns.remove(conn)
        self._read_head(conn)

    def _read_head(self, conn) -> None:
        conn.sock.setblocking(False)
        conn.head = bytearray()
        conn.timeout = time.monotonic() + self.read_timeout_sec
        self.heads.append(conn)
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._head_bytes, conn))

    def _head_bytes(self, conn, sock) -> None:
        try:
            data = sock.recv(_HEAD_PIECE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:  # the client went away
            self._end_head(conn)
            return
        conn.head += data
        if read_whole(conn.head):
            self.poller.unregister(sock)
            self.heads.remove(conn)
            self.enqueue_req(conn)

    def _end_head(self, conn) -> None:
        self.poller.unregister(conn.sock)
        self.heads.remove(conn)
        self.nr_conns -= 1
        conn.close()

    def handle(self, conn):
        if getattr(conn, "head", None):  # what the loop read: the parser reads it first
            conn.data_ready = True
            conn.init()
            conn.parser.unreader.unread(bytes(conn.head))
        conn.head = None
        self.reads.arm(conn.sock, time.monotonic() + self.read_timeout_sec)
        try:
            return super().handle(conn)
        finally:
            self.reads.disarm(conn.sock)

    def handle_request(self, req, conn):
        # The head is read; the application reads the body (if any) at its pace.
        if isinstance(req.body.reader, LengthReader) and req.body.reader.length == 0:
            self.reads.disarm(conn.sock)
        else:
            req.body = PacedBody(req.body, self.reads, conn.sock, self.read_timeout_sec)
        return super().handle_request(req, conn)

    def murder_pending(self) -> None:
        super().murder_pending()  # gunicorn's loop calls it about once a second
        now = time.monotonic()
        while self.heads and self.heads[0].timeout < now:
            self._end_head(self.heads[0])
        self.reads.expire(now)


_EXIT_MARGIN_SEC = 0.5  # of the master's graceful timeout, kept for the process's own exit
_HEAD_PIECE = 64 * 1024  # read by the loop at a time; also the most it buffers of a head
_SMALL_BODY = 64 * 1024  # a body up to this long is read by the loop too, with the head
_CONTENT_LENGTH = re.compile(rb"\ncontent-length[ \t]*:[ \t]*(\d{1,12})[ \t]*\r?\n", re.I)


def read_whole(data: bytes) -> bool:
    """Whether the loop has read what it reads of a request: the head, and a small body
    of a known length. Only where to stop; gunicorn's parser reads the request itself
    (past `_HEAD_PIECE` of head, its limits answer 431/400, on a thread)."""
    ends = [at + len(mark) for mark in (b"\r\n\r\n", b"\n\n") if (at := data.find(mark)) >= 0]
    if not ends:
        return len(data) > _HEAD_PIECE
    head_end = min(ends)
    length = _CONTENT_LENGTH.search(data, 0, head_end)
    head = data[:head_end].lower()
    # `Expect: 100-continue`: the client sends its body once told to (gunicorn does).
    if length is None or b"transfer-encoding" in head or b"\nexpect" in head:
        return True
    body = int(length.group(1))
    return body > _SMALL_BODY or len(data) >= head_end + body


_MIN_BODY_RATE = 16 * 1024  # bytes per second a request body must average, after the grace


class ReadDeadlines:
    """Sockets whose request a thread is reading, each with the time it must be done by."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._due: dict[socket.socket, float] = {}

    def arm(self, sock: socket.socket, due: float) -> None:
        with self._lock:
            self._due[sock] = due

    def disarm(self, sock: socket.socket) -> None:
        with self._lock:
            self._due.pop(sock, None)

    def expire(self, now: float) -> None:
        with self._lock:
            late = [sock for sock, due in self._due.items() if due < now]
            for sock in late:
                del self._due[sock]
        for sock in late:
            with contextlib.suppress(OSError):  # closed meanwhile (a closed socket has no fd)
                sock.shutdown(socket.SHUT_RD)  # the thread's blocked recv() returns b""


class PacedBody:
    """A request body (gunicorn's `Body`) whose reads move its deadline: `grace` seconds
    plus one second per `_MIN_BODY_RATE` bytes read, from the end of the head."""

    def __init__(self, body, reads: ReadDeadlines, sock: socket.socket, grace: float) -> None:
        self._body, self._reads, self._sock = body, reads, sock
        self._start, self._grace, self._read = time.monotonic(), grace, 0
        reads.arm(sock, self._start + grace)

    def _moved(self, data: bytes, asked: int | None) -> bytes:
        self._read += len(data)
        reader = self._body.reader
        if (not data and asked != 0) or (isinstance(reader, LengthReader) and reader.length == 0):
            self._reads.disarm(self._sock)  # all read
        else:
            self._reads.arm(self._sock, self._start + self._grace + self._read / _MIN_BODY_RATE)
        return data

    def read(self, size: int | None = None) -> bytes:
        return self._moved(self._body.read(size), size)

    def readline(self, size: int | None = None) -> bytes:
        return self._moved(self._body.readline(size), size)

    def readlines(self, hint: int | None = None) -> list[bytes]:
        return list(self)

    def __iter__(self):
        return self

    def __next__(self) -> bytes:
        line = self.readline()
        if not line:
            raise StopIteration
        return line


def freeze_startup_objects() -> None:
    """PERF(nimbus): what a worker holds once it is ready (modules, the app, the platform)
    is never scanned by the garbage collector again (`gc.freeze`).

    A full collection walks every tracked object with the GIL held: in a loaded worker
    (~90,000 objects at start) each took 72-326 ms, every ~20,000 calls, stalling all
    of the worker's calls in flight (p99); after the freeze 0.3 ms. Startup garbage in
    a cycle stays allocated for good: a one-off, and no collection here (it would cost
    every worker start ~50 ms)."""
    gc.freeze()


def exit_now(exiting: BaseException | None) -> None:
    """End the stopped worker here, with the exit code it was leaving with, its log flushed.

    NOTE(shutdown): Python's own exit joins the threads of every thread pool, daemons or
    not, even after `shutdown(wait=False)`: an async call whose guest still slept after
    its hand-back held the stopped worker until the master's SIGKILL at
    GRACEFUL_TIMEOUT_SEC (measured: stopped 3.7 s after SIGTERM, killed at 6). What such
    threads ran was handed back; the rest of the exit (atexit joins) is not needed.
    """
    code = exiting.code if isinstance(exiting, SystemExit) else (1 if exiting else 0)
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code if isinstance(code, int) else 0 if code is None else 1)


def replace_this_worker(stuck: int) -> None:
    """Replace this worker: guest threads blocked for good in a host call (a
    component sleeping for years) end only with the process.

    SIGTERM is gunicorn's graceful stop of one worker: it stops accepting,
    finishes the calls in flight (GRACEFUL_TIMEOUT_SEC), runs `worker_exit`
    (jobs hand back their leases) and exits; the master starts a fresh worker
    on the same socket, so waiting connections are served by it.
    """
    logging.getLogger("nimbus.serve").warning(
        "%d guest threads are blocked past their deadline: replacing this worker "
        "(pid %d) after its calls in flight",
        stuck,
        os.getpid(),
    )
    os.kill(os.getpid(), signal.SIGTERM)


def serve(settings: Settings | None = None) -> None:
    settings = settings or Settings()
    configure_logging(settings.log_level)
    ensure_port_free(settings.host, settings.port)
    # NOTE(security): the data folder holds the API key and, on the local store,
    # every record: only this user may list it.
    try:
        settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        if settings.data_dir.stat().st_mode & 0o077:
            settings.data_dir.chmod(0o700)
    except OSError as exc:
        raise SettingsError(f"DATA_DIR={str(settings.data_dir)!r}: {exc.strerror}") from None
    _, generated = ensure_api_key(settings)
    if generated:  # never the key itself: terminals and log collectors keep what is printed
        print(
            f"Generated an API key: {key_file(settings)} (mode 0600). Use it as\n"
            f"  Authorization: Bearer $(cat {key_file(settings)})",
            file=sys.stderr,
            flush=True,
        )
    # Every start says where to go: on a restart the message above is not printed again.
    key_from = "NIMBUS_API_KEY" if settings.nimbus_api_key else key_file(settings)
    print(
        f"Nimbus on http://{settings.host}:{settings.port}/ (the console; the API under "
        f"/api/v1, key from {key_from}); store {settings.nimbus_store}",
        file=sys.stderr,
        flush=True,
    )
    metrics_dir = prepare_metrics_dir(settings.metrics_dir)
    store = store_to_probe(settings)  # made here: the thread below only sends requests
    with ThreadPoolExecutor(1) as pool:
        # PERF(nimbus): the probe's requests to the store (5; 0.15-0.6 s on a loaded
        # SeaweedFS) overlap the imports; the thread ends here, before any fork.
        refused = pool.submit(store_refused, store) if store is not None else None
        import_app_modules()
        if refused is not None and refused.result():
            logging.getLogger("nimbus.serve").error("not starting: %s", STORE_REFUSAL)
            raise SystemExit(2)
    from compiler import layout

    if missing := layout.missing():
        logging.getLogger("nimbus.serve").warning(
            "NIMBUS_HOME (%s) lacks %s: source builds will fail; point NIMBUS_HOME at a "
            "folder with the repository's wit/, scripts/ and runtimes/",
            layout.HOME,
            ", ".join(missing),
        )
    NimbusServer(settings, metrics_dir).run()


class UtcFormatter(logging.Formatter):
    """Every line of the server's log alike: UTC time as RFC 3339 (as the API's), level,
    logger, process, message: `2026-12-06T05:32:14.213Z INFO nimbus.alerts [2210] …`."""

    converter = time.gmtime

    def __init__(self) -> None:
        super().__init__(
            "%(asctime)s.%(msecs)03dZ %(levelname)s %(name)s [%(process)d] %(message)s",
            "%Y-%m-%dT%H:%M:%S",
        )


def configure_logging(level: str) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(UtcFormatter())
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
    # boto3 says "Found credentials in environment variables." once per worker at INFO
    logging.getLogger("botocore.credentials").setLevel(logging.WARNING)


class ServerLog(glogging.Logger):
    """gunicorn's own lines (workers booting, signals, timeouts) in the server's format:
    they came as `[2026-12-06 05:30:10 +0000] [17631] [INFO] …` among Nimbus's lines,
    so one parser could not read the log."""

    def setup(self, cfg) -> None:
        super().setup(cfg)
        for handler in self.error_log.handlers:
            handler.setFormatter(UtcFormatter())


def ensure_port_free(host: str, port: int) -> None:
    """A port in use is said once, before the start line (which named the other server's
    URL as this one's), not by gunicorn's ten ERROR lines over five seconds."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gunicorn binds
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                return  # gunicorn reports anything else itself
            raise NimbusError(
                f"{host}:{port} is in use (another `nimbus serve`?): stop it, or pick "
                "another port with --port (PORT)"
            ) from None


def import_app_modules() -> None:
    """PERF(nimbus): import the app's modules once, in the master, before workers fork.

    A worker then starts without ~0.3–0.6 s of imports (scale from zero), and
    the modules' memory is shared copy-on-write. Only imports: no Engine, no
    threads and no store connection exist before the fork (see `load`).
    NOTE: after `prepare_metrics_dir`, which prometheus-client must see first.
    """
    from . import platform  # noqa: F401
    from .api import app  # noqa: F401


def prepare_metrics_dir(path: Path) -> Path:
    """An empty folder for prometheus-client's multiprocess files, named in the environment.

    NOTE: in the master, before workers fork: prometheus_client picks its value
    class from this variable when it is first imported, which must therefore
    happen after this (so this module does not import it).
    """
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(path)
    return path
