"""`nimbus serve`: the Falcon app under gunicorn (gthread workers)."""

from __future__ import annotations

import logging
import os
import select
import shutil
import signal
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from gunicorn.app.base import BaseApplication
from gunicorn.workers.gthread import ThreadWorker

from .api.auth import ensure_api_key, key_file, read_api_key
from .settings import Settings
from .store_check import STORE_REFUSAL, store_refused, store_to_probe


class NimbusServer(BaseApplication):
    def __init__(self, settings: Settings, metrics_dir: Path) -> None:
        self.settings = settings
        self.metrics_dir = metrics_dir
        self.platform = None
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
            "proc_name": "nimbus",
            "control_socket_disable": True,  # one per machine by default; we need none
            "post_worker_init": self._post_worker_init,
            "worker_exit": self._worker_exit,
            "child_exit": self._child_exit,
        }
        for key, value in options.items():
            self.cfg.set(key, value)

    def load(self):
        # NOTE: runs in each worker after fork (no preload): the wasmtime
        # Engine and background threads must never be made in the master.
        from .api.app import create_app
        from .platform import Platform

        self.platform = Platform.open(self.settings, metrics_dir=self.metrics_dir)
        self.platform.start()
        return create_app(self.platform, read_api_key(self.settings))

    def _post_worker_init(self, worker) -> None:
        if self.platform is not None:
            self.platform.sandbox.on_stuck_threads = replace_this_worker

    def _worker_exit(self, server, worker) -> None:
        if self.platform is not None:
            self.platform.stop()

    def _child_exit(self, server, worker) -> None:
        # In the master, for every worker that exits, even one killed with -9.
        from .telemetry.metrics import mark_worker_dead

        mark_worker_dead(self.metrics_dir, worker.pid)


class DrainingThreadWorker(ThreadWorker):
    """gunicorn's gthread worker, except that a stopping worker takes the connections
    already waiting in the listening socket's backlog and then closes its copy of the
    socket at once, not after its drain.

    A client whose connection the kernel completed before the stop is served like any
    call in flight; once the master (which closes its copy first) and every worker have
    closed theirs, a new connection is refused at once (ECONNREFUSED: the client knows
    its request was never read). Before, the kernel kept completing handshakes into the
    backlog of a socket no one accepted from, for as long as the calls in flight took,
    then reset them all: clients that had sent a request saw it reset, not knowing
    whether it ran (measured: 16 of 16 busy clients' next calls). A worker replaced alone
    (SIGTERM to it) changes nothing for clients: the others still hold the socket.
    """

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
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s [%(process)d] %(message)s",
    )
    # NOTE(security): the data folder holds the API key and, on the local store,
    # every record: only this user may list it.
    settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    if settings.data_dir.stat().st_mode & 0o077:
        settings.data_dir.chmod(0o700)
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
