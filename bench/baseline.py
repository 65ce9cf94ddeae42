"""The baseline: a bare Falcon JSON echo under gunicorn with Nimbus's own worker settings.

Run as `python -m bench.baseline` with HOST/PORT/WORKERS/THREADS in the
environment. It reuses the gateway's gunicorn application class and settings
object and only swaps the WSGI app, so worker class, `workers`, `threads`,
keep-alive and timeouts are the ones `nimbus serve` uses — whatever they
become. With `ECHO_GUNICORN_DEFAULTS=1` the same app runs under gunicorn's own
defaults instead (one sync worker, nothing set but the address): the bare
Falcon figure issue 19 asks for beside the like-for-like one.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import falcon
import httpx
import orjson

from .servers import BIN, ServerProcess, base_env, free_port


class Echo:
    """POST returns the JSON body; GET answers the readiness probe."""

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        # PERF: parse and re-encode with orjson, the same JSON library the
        # gateway uses to validate events: the echo does the minimum real work.
        body = req.bounded_stream.read()
        event = orjson.loads(body) if body.strip() else {}
        resp.data = orjson.dumps(event)
        resp.content_type = falcon.MEDIA_JSON

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.data = b'{"status":"ok"}'
        resp.content_type = falcon.MEDIA_JSON


class WorkerSettings:
    """What gunicorn was really given, so the report can show both sides match."""

    def __init__(self, settings: dict[str, object]) -> None:
        self.body = orjson.dumps(settings)

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.data = self.body
        resp.content_type = falcon.MEDIA_JSON


def create_app(settings: dict[str, object] | None = None) -> falcon.App:
    app = falcon.App()
    echo = Echo()
    app.add_route("/", echo)
    app.add_route("/health", echo)
    app.add_route("/echo", echo)
    app.add_route("/settings", WorkerSettings(settings or {}))
    return app


def worker_settings(cfg, keys: tuple[str, ...]) -> dict[str, object]:
    """What gunicorn was given: the worker type by gunicorn's own name ("gthread" also
    for the gateway's draining subclass of it), the class itself, and `keys`."""
    from gunicorn.workers.gthread import ThreadWorker
    from gunicorn.workers.sync import SyncWorker

    cls = cfg.worker_class
    kinds = ((ThreadWorker, "gthread"), (SyncWorker, "sync"))
    kind = next((name for base, name in kinds if issubclass(cls, base)), cfg.worker_class_str)
    chosen = {key: getattr(cfg, key) for key in keys}
    return {"worker_class": kind, "worker_class_impl": cls.__name__, **chosen}


def serve_with_gunicorn_defaults() -> None:
    from gunicorn.app.base import BaseApplication

    class DefaultsEcho(BaseApplication):
        def load_config(self) -> None:
            self.cfg.set("bind", f"{os.environ['HOST']}:{os.environ['PORT']}")
            self.cfg.set("control_socket_disable", True)  # one per machine; we need none

        def load(self):
            return create_app(worker_settings(self.cfg, ("workers", "threads")))

    DefaultsEcho().run()


def serve() -> None:
    if os.environ.get("ECHO_GUNICORN_DEFAULTS") == "1":
        return serve_with_gunicorn_defaults()
    from gateway.serve import NimbusServer
    from gateway.settings import Settings

    class EchoServer(NimbusServer):
        def load(self):
            keys = ("workers", "threads", "keepalive", "timeout")
            return create_app(worker_settings(self.cfg, keys))

    # The echo records no metrics; an empty folder satisfies the worker-exit hook.
    EchoServer(Settings(), Path(tempfile.mkdtemp(prefix="echo-metrics-"))).run()


class BaselineServer(ServerProcess):
    """The echo app as a subprocess on a free 127.0.0.1 port."""

    def __init__(
        self, log_dir: Path, workers: int = 2, name: str = "baseline-echo", **env: str
    ) -> None:
        super().__init__(
            name,
            [str(BIN / "python"), "-m", "bench.baseline"],
            base_env(
                HOST="127.0.0.1",
                PORT=str(free_port()),
                WORKERS=str(workers),
                LOG_LEVEL="warning",
                # Settings resolves data_dir; point it somewhere harmless.
                DATA_DIR=str(log_dir / "baseline-data"),
                **env,
            ),
            log_dir,
        )

    @property
    def echo_url(self) -> str:
        return f"{self.url}/echo"

    def worker_settings(self) -> dict[str, object]:
        return httpx.get(f"{self.url}/settings", timeout=5).json()


if __name__ == "__main__":
    serve()
