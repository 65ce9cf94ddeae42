"""Synchronous invocation: resolve what serves, run it in the sandbox, shape the outcome."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import orjson

from compiler import RUNTIMES
from sandbox import Deployment, InvokeResult, Mount, Sandbox
from store import errors
from store.records import (
    MAX_JSON_DEPTH,
    BuildStatus,
    Function,
    FunctionStatus,
    Trigger,
    Version,
    nests_deeper_than,
    sequential_id,
)

from ..telemetry.logs import with_error
from ..telemetry.recorder import THROTTLED, InvocationOutcome, InvocationRecorder
from ._bounded import BoundedCache
from .concurrency import FunctionConcurrency, Slot
from .deployments import DeploymentCache
from .env_crypto import EnvCipher
from .targets import Target, parse_target

# Finds the version an alias serves for one call (the versions service sets it).
# (function, alias, routing key or None) → version number.
AliasResolver = Callable[..., int]


@dataclass
class Invocation:
    id: str
    function: Function
    version: int
    result: InvokeResult
    outcome: InvocationOutcome  # what the recorder got: logs, status, duration


def parse_event(body: bytes) -> bytes:
    """The event exactly as sent; an empty body is `{}`; non-JSON is refused."""
    if not body.strip():
        return b"{}"
    try:
        orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise errors.BadRequest(
            f"the event is not valid JSON: {exc}", code="invalid_json"
        ) from None
    return body


def parse_caller_context(header: str | None) -> dict:
    if not header:
        return {}
    try:
        value = orjson.loads(header)
    except orjson.JSONDecodeError:
        value = None
    if not isinstance(value, dict):
        raise errors.BadRequest("X-Nimbus-Context must be a JSON object")
    if nests_deeper_than(value):  # NOTE: orjson writes 254 levels at most (reads 1,024)
        raise errors.BadRequest(f"X-Nimbus-Context nests deeper than {MAX_JSON_DEPTH} levels")
    return value


def runtime_fields(version: Version) -> dict:
    """A shared-runtime deployment's extra fields (kind "runtime"): handler, code, mounts."""
    build = version.build
    if build.artifact_kind != "runtime":
        return {}
    return {
        "handler": version.handler or "",
        "source_key": build.bundle_key,
        "source_sha256": build.bundle_sha256,
        "mounts": tuple(Mount(m.guest_path, m.key, m.sha256) for m in build.mounts),
    }


def platform_built(runtime_name: str) -> bool:
    """Whether the platform built the artifact from source: its glue (and a program,
    as documented) reads the context from NIMBUS_CONTEXT. An uploaded `wasm`
    module's environment is exactly its env_vars (DESIGN.md), unless it asks."""
    runtime = RUNTIMES.get(runtime_name)
    return runtime is None or runtime.kind == "source"


def _refuse_unservable(fn: Function) -> None:
    status = fn.status
    if status == FunctionStatus.offline:
        raise errors.Conflict(
            f"function {fn.name} is offline (switched off by a user); set its status to "
            f'active to serve it again: PUT {{"status": "active"}} or '
            f"`nimbus update {fn.name} --status active`",
            code="offline",
        )
    if status == FunctionStatus.failed:
        error = fn.latest_build.error if fn.latest_build else None
        raise errors.Conflict(
            f"function {fn.name} has no version that built: {error}", code="build_failed"
        )
    if status == FunctionStatus.creating:
        build = fn.latest_build
        raise _still_building(
            fn,
            build.version if build else fn.latest_version,
            f"{build.status.value if build else 'queued'} and no version serves yet",
        )


def _still_building(fn: Function, number: int, state: str) -> errors.Conflict:
    """409 not_ready naming the version and what to do: wait (Retry-After) or look."""
    latest = number == fn.latest_version
    flag, query = ("", "") if latest else (f" --version {number}", f"?version={number}")
    return errors.Conflict(
        f"function {fn.name} is still building: v{number} is {state}; call again after "
        f"Retry-After, or see the build: `nimbus build {fn.name}{flag}` "
        f"(GET /api/v1/functions/{fn.name}/build{query})",
        code="not_ready",
    )


def _no_aliases(fn: Function, alias: str, routing_key: str | None = None) -> int:
    raise errors.NotFound(f"function {fn.name} has no alias {alias!r}")


class InvokeService:
    def __init__(
        self,
        cache: DeploymentCache,
        sandbox: Sandbox,
        recorder: InvocationRecorder,
        env: EnvCipher | None = None,
        concurrency: FunctionConcurrency | None = None,
    ) -> None:
        self.cache = cache
        self.sandbox = sandbox
        self.recorder = recorder
        self.env = env or EnvCipher([])
        self.concurrency = concurrency  # None: max_concurrency is not enforced (tests)
        self.resolve_alias: AliasResolver = _no_aliases
        self._deployments: BoundedCache[tuple[str, int], Deployment] = BoundedCache(
            self.cache.max_versions
        )

    def resolve(
        self,
        ref: str | Target,
        version: int | None = None,
        alias: str | None = None,
        *,
        routing_key: str | None = None,
        override: int | None = None,
    ) -> tuple[Function, Version]:
        """What serves a target: `ref` is a target (`name`, `name:3`, `name:prod`, an id),
        `version` and `alias` what the request named beside it (query parameters).
        `routing_key` keeps a caller on one of an alias's weighted versions;
        `override` (X-Nimbus-Version-Override) pins a version for testing."""
        target = ref if isinstance(ref, Target) else parse_target(ref, version=version, alias=alias)
        fn = self.cache.function(target.function)
        _refuse_unservable(fn)
        if override is not None:
            number = override
        elif target.alias is not None:
            fn, number = self._alias_version(fn, target, routing_key)
        else:
            number = target.version if target.version is not None else fn.active_version
        record = self.cache.version(fn, number)
        if record.build.status != BuildStatus.ready:
            if record.build.status == BuildStatus.failed:
                raise errors.Conflict(
                    f"version {number} failed to build: {record.build.error}", code="build_failed"
                )
            raise _still_building(fn, number, record.build.status.value)
        return fn, record

    def _alias_version(
        self, fn: Function, target: Target, routing_key: str | None
    ) -> tuple[Function, int]:
        """The version `target.alias` sends this call to, and the record that says so.

        NOTE: the cached record may be up to `max_age` old, from before an alias was
        made on another worker or replica: a miss re-reads the record once before it
        is a 404, so a new alias serves everywhere at once (a moved one within max_age)."""
        # the key only when given: a resolver may take just (function, alias)
        keyed = () if routing_key is None else (routing_key,)
        try:
            return fn, self.resolve_alias(fn, target.alias, *keyed)
        except errors.NotFound:
            fresh = self.cache.function(target.function, fresh=True)
            if fresh is fn:
                raise  # the record had not changed: the alias does not exist
            _refuse_unservable(fresh)
            return fresh, self.resolve_alias(fresh, target.alias, *keyed)

    @staticmethod
    def new_invocation_id() -> str:
        return sequential_id.timed("inv_")

    def deployment(self, fn: Function, version: Version) -> Deployment:
        # A ready version never changes (nor does a function's name), so its
        # Deployment is made once per worker.
        key = (fn.id, version.version)
        found = self._deployments.get(key)
        if found is None:
            found = self._deployments.put(key, self._make_deployment(fn, version))
        return found

    def _make_deployment(self, fn: Function, version: Version) -> Deployment:
        return Deployment(
            function_id=fn.id,
            function_name=fn.name,
            version=version.version,
            artifact_key=version.build.artifact_key,
            artifact_sha256=version.build.artifact_sha256,
            kind=version.build.artifact_kind,
            env_vars=self.env.open(version.env_vars),
            memory_mb=version.memory_mb,
            timeout_sec=version.timeout_sec,
            reuse_instance=version.reuse,
            context_env=platform_built(version.runtime),
            **runtime_fields(version),
        )

    def invoke(
        self,
        ref: str | Target,
        event: bytes,
        caller_context: dict,
        *,
        version: int | None = None,
        alias: str | None = None,
        trigger: Trigger = Trigger.api,
        invocation_id: str | None = None,
        source: str | None = None,
        routing_key: str | None = None,
        override: int | None = None,
        slot: Slot | None = None,
    ) -> Invocation:
        """Run one invocation. `slot`: one of the function's max_concurrency slots the
        caller already holds (the async dispatcher takes it before its claim)."""
        fn, record = self.resolve(ref, version, alias, routing_key=routing_key, override=override)
        invocation_id = invocation_id or self.new_invocation_id()
        deadline = time.time() + record.timeout_sec
        context = {
            **caller_context,  # the caller's keys, never overriding the platform's
            "function_name": fn.name,
            "version": record.version,
            "invocation_id": invocation_id,
            "deadline_ms": int(deadline * 1000),
            "memory_limit_mb": record.memory_mb,
        }
        outcome = InvocationOutcome(
            invocation_id=invocation_id,
            function_id=fn.id,
            function_name=fn.name,
            runtime=fn.runtime,
            version=record.version,
            trigger=trigger,
            status="succeeded",
            source=source,
        )
        started = time.perf_counter()
        taken = None
        try:
            if slot is None and fn.max_concurrency is not None and self.concurrency is not None:
                taken = self.concurrency.throttle(fn.id, fn.name, fn.max_concurrency)
            result = self.sandbox.invoke(self.deployment(fn, record), event, context)
        except errors.LimitExceeded as exc:
            outcome.status, outcome.error_code = THROTTLED, exc.code  # it never ran
            self.recorder.record(outcome)
            exc.invocation_id = invocation_id  # recorded as throttled under this id
            raise
        except errors.NimbusError as exc:
            outcome.status = "timed_out" if isinstance(exc, errors.Timeout) else "failed"
            outcome.error_code = exc.code
            outcome.duration_ms = (time.perf_counter() - started) * 1000
            # The sandbox's errors carry what the guest logged before it was stopped.
            outcome.logs = getattr(exc, "logs", b"") or b""
            outcome.cold_start = bool(getattr(exc, "cold_start", False))
            self.recorder.record(outcome)
            exc.invocation_id = invocation_id  # the error response names it, as a result does
            exc.outcome = outcome  # and may carry its log tail
            raise
        finally:
            if taken is not None:
                self.concurrency.release(taken)
        outcome.duration_ms = result.duration_ms
        outcome.cold_start = result.cold_start
        outcome.output = result.output
        outcome.logs = result.logs
        if result.error is not None:
            outcome.status = "failed"
            outcome.error_code = "function_error"
            outcome.error_type = result.error.type
            # As Lambda's runtimes do: the error goes to the log too, so the owner of a
            # webhook (its caller gets a bare 502), async or scheduled call can see it.
            outcome.logs = with_error(result.logs, result.error)
        self.recorder.record(outcome)
        return Invocation(invocation_id, fn, record.version, result, outcome)
