"""The Docker engine as the native executor uses it: create, start, remove. Never pull.

Every engine failure becomes `errors.Unavailable(code="engine_unavailable")` (503,
and an async invocation that meets it is retried like any platform outage):
an engine that does not answer, a missing runtime image, a container that
will not start.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from dataclasses import dataclass
from pathlib import Path

from store import errors

from ._docker_config import NativeConfig

log = logging.getLogger("nimbus.sandbox.native")

AGENT_PATH = "/usr/sbin/nimbus-agent"
LABEL = "nimbus.native"  # every container the executor makes carries it


def unavailable(message: str) -> errors.Unavailable:
    return errors.Unavailable(message, code="engine_unavailable")


class EngineBusy(errors.Unavailable):
    """The engine did not answer in time or failed on its side (a 5xx): a loaded engine
    often does the same thing at the second try, unlike a missing image or a refusal."""

    def __init__(self, message: str) -> None:
        super().__init__(message, code="engine_unavailable")


@dataclass(frozen=True)
class ContainerSpec:
    name: str
    binary: Path  # host path, bind-mounted read-only at /function
    socket_dir: Path  # host path, bind-mounted read-only at /run/nimbus
    token: str
    memory_mb: int
    labels: dict[str, str]


class Engine:
    """A lazily made, per-process Docker API client (made after gunicorn's fork)."""

    def __init__(self, config: NativeConfig) -> None:
        self._config = config
        self._lock = threading.Lock()
        self._api = None
        self._image_checked = False

    @property
    def address(self) -> str:
        return self._config.docker_host or "unix:///var/run/docker.sock"

    def _client(self):
        api = self._api
        if api is not None:
            return api
        import docker  # NOTE(native): imported on first native call; WASM-only workers skip it

        with self._lock:
            if self._api is None:
                try:
                    self._api = docker.APIClient(
                        base_url=self.address,
                        version="auto",
                        timeout=self._config.api_timeout_sec,
                    )
                except docker.errors.DockerException as exc:
                    raise unavailable(
                        f"the container engine at {self.address} does not answer: {_reason(exc)}"
                    ) from None
            return self._api

    def _forget(self) -> None:
        """After a connection failure: make a new client next time (the engine may be back)."""
        with self._lock:
            api, self._api = self._api, None
            self._image_checked = False
        if api is not None:
            with contextlib.suppress(Exception):
                api.close()

    def _call(self, what: str, fn, *args, **kwargs):
        import docker
        import requests

        api = self._client()
        try:
            return fn(api, *args, **kwargs)
        except docker.errors.ImageNotFound:
            raise unavailable(
                f"the runtime image {self._config.image} is not in the container engine; "
                "build it with scripts/runtime-image.sh (make engine)"
            ) from None
        except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
            self._forget()
            raise EngineBusy(
                f"the container engine at {self.address} does not answer ({what}): {_reason(exc)}"
            ) from None
        except docker.errors.APIError as exc:
            if exc.is_server_error():
                raise EngineBusy(f"the container engine failed to {what}: {_reason(exc)}") from None
            raise unavailable(f"the container engine refused to {what}: {_reason(exc)}") from None

    def ping(self) -> None:
        self._call("answer a ping", lambda api: api.ping())

    def check_image(self) -> None:
        if self._image_checked:
            return
        self._call("inspect the runtime image", lambda api: api.inspect_image(self._config.image))
        self._image_checked = True

    def run(self, spec: ContainerSpec) -> str:
        """Create and start a container for one function's agent; its id."""
        self.check_image()
        cfg = self._config

        def create(api) -> str:
            from docker.types import LogConfig, Ulimit

            host_config = api.create_host_config(
                binds={
                    str(spec.binary): {"bind": "/function", "mode": "ro"},
                    str(spec.socket_dir): {"bind": "/run/nimbus", "mode": "ro"},
                },
                network_mode="none",
                read_only=True,
                tmpfs={"/tmp": f"rw,nosuid,nodev,size={cfg.tmpfs_mb}m,mode=1777"},
                mem_limit=f"{spec.memory_mb}m",
                memswap_limit=f"{spec.memory_mb}m",  # no swap beyond the limit
                pids_limit=cfg.pids_limit,
                cap_drop=["ALL"],
                security_opt=["no-new-privileges"],
                ulimits=[Ulimit(name="nofile", soft=cfg.nofile, hard=cfg.nofile)],
                nano_cpus=int(cfg.cpus * 1e9) if cfg.cpus else None,
                # The agent exits when its worker's connection closes (worker
                # gone, container reaped): the engine then removes the container.
                auto_remove=True,
                log_config=LogConfig(type=LogConfig.types.NONE),
                init=False,  # the agent is PID 1 and reaps everything itself
            )
            created = api.create_container(
                cfg.image,
                command=[AGENT_PATH],
                name=spec.name,
                user="65534:65534",
                working_dir="/tmp",
                environment={"NIMBUS_AGENT_TOKEN": spec.token},
                labels={LABEL: "1", **spec.labels},
                network_disabled=True,
                stop_signal="SIGKILL",  # PID 1 ignores SIGTERM; nothing to flush
                host_config=host_config,
            )
            container_id = created["Id"]
            try:
                api.start(container_id)
            except BaseException:
                with contextlib.suppress(Exception):
                    api.remove_container(container_id, force=True)
                raise
            return container_id

        return self._call("start a container", create)

    def remove(self, container_id: str) -> None:
        """Kill and remove a container; quiet when it is already gone or the engine is."""
        import docker

        with contextlib.suppress(errors.NimbusError, docker.errors.NotFound):
            self._call(
                "remove a container", lambda api: api.remove_container(container_id, force=True)
            )

    def inspect(self, container_id: str) -> dict:
        return self._call("inspect a container", lambda api: api.inspect_container(container_id))

    def containers(self, **labels: str) -> list[dict]:
        filters = {"label": [LABEL] + [f"{k}={v}" for k, v in labels.items()]}
        return self._call("list containers", lambda api: api.containers(all=True, filters=filters))

    def close(self) -> None:
        self._forget()


def _reason(exc: Exception) -> str:
    text = getattr(exc, "explanation", None) or str(exc)
    return str(text).strip().splitlines()[0][:300] if str(text).strip() else type(exc).__name__
