"""Function lifecycle: create, update (→ new versions), list, delete, bulk operations.

Resources stay thin: they parse a request into a schema and call this service.
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
import time
from collections.abc import Callable
from pathlib import Path

import orjson

from compiler import RUNTIMES, Runtime, parse_build_errors
from compiler.runtimes.javascript import ENTRY_EXTENSIONS
from store import errors
from store.functions import FunctionRepo
from store.records import (
    BuildStatus,
    Function,
    FunctionStatus,
    Version,
    new_id,
    new_webhook_key,
    now,
)

from ..limits import BINARY_LIMIT, SOURCE_LIMIT, code_size_limit, memory_floor
from ..schemas import (
    BuildErrorView,
    BuildSummaryView,
    BuildView,
    BulkFailure,
    BulkResult,
    BulkUpdate,
    FunctionCreate,
    FunctionList,
    FunctionUpdate,
    FunctionView,
)
from ..settings import Settings
from ._bounded import BoundedCache
from .env_crypto import EnvCipher

log = logging.getLogger("nimbus.functions")

_CONFIG_FIELDS = (
    "handler", "code", "files", "artifact_base64", "requirements",
    "memory_mb", "timeout_sec", "env_vars", "form", "target", "reuse",
)  # fmt: skip


MASKED = "****"  # how a record shows each env var's value
_HANDLER_FUNCTION = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*\Z")  # a Python or JavaScript name


def _keep_masked(new: dict[str, str], saved: dict[str, str]) -> dict[str, str]:
    """A variable sent back with its masked value keeps the saved one, so a client edits one
    variable without knowing the others (the API never returns them)."""
    unknown = [name for name, value in new.items() if value == MASKED and name not in saved]
    if unknown:
        message = f"{MASKED} keeps a saved value, and there is none to keep"
        raise errors.Invalid(
            f"env_vars: {message}: {', '.join(unknown)}",
            details=[{"field": f"env_vars.{name}", "message": message} for name in unknown],
        )
    return {name: saved[name] if value == MASKED else value for name, value in new.items()}


def _check_handler_file(
    runtime: Runtime, given: str | None, kept: tuple[str, str], files: dict[str, str]
) -> None:
    """Files without the handler's module fail their build after a 201 ("no handler.py
    among the function's files"); an agent or a script sending `{"app.py": …}` learns it
    now, with the handler that names its file."""
    handler = given or kept[1]
    module = handler.rpartition(".")[0]
    if runtime.name == "python":  # as the runtime's loader looks (runner.py)
        base = module.replace(".", "/")
        wanted = [f"{base}.py", f"{base}/__init__.py"]
    elif runtime.name == "javascript":  # as the build's entry_point looks
        wanted = [module] if module.endswith(ENTRY_EXTENSIONS) else []
        wanted += [module + ext for ext in ENTRY_EXTENSIONS]
    else:
        return
    if not module or any(name in files for name in wanted):
        return
    which = repr(handler) if given else f"{kept[0]} {handler!r}"
    message = f"{which} calls {wanted[0]}, which is not among the files ({', '.join(files)})"
    suffixes = tuple(f".{ext}" for ext in runtime.extensions)
    top = [name for name in files if "/" not in name and name.endswith(suffixes)]
    if len(top) == 1:
        stem = top[0].rsplit(".", 1)[0]
        message += f': send "handler": "{stem}.<function>" to call a function of {top[0]}'
    raise errors.Invalid.field("handler", message)


class FunctionService:
    def __init__(
        self,
        repo: FunctionRepo,
        settings: Settings,
        on_enqueue: Callable[[], None],
        on_new_version: Callable[[str], object] | None = None,
    ) -> None:
        self.repo = repo
        self.settings = settings
        self.env = EnvCipher.from_setting(settings.nimbus_env_keys)  # values sealed at rest
        self._on_enqueue = on_enqueue  # wakes this worker's build loop
        self._on_new_version = on_new_version  # e.g. prune versions past the limit
        # (function id, latest version) → the handler of a record written before records
        # kept it: versions never change, so each is read once per worker
        self._old_handlers: BoundedCache[tuple[str, int], str] = BoundedCache(4096)

    # -- views ---------------------------------------------------------------

    def _old_handler(self, fn: Function, default: str) -> str | None:
        """The handler a record written before records kept it serves: its latest
        version's, or the runtime's default (what its builds used when that had none).
        One read per such function and worker, in a listing too."""
        if not fn.latest_version:
            return default
        key = (fn.id, fn.latest_version)
        found = self._old_handlers.get(key)
        if found is None:
            try:
                version = self.repo.get_version(fn.id, fn.latest_version)[0]
            except errors.NotFound:
                return default  # pruned or deleted meanwhile: not kept
            except errors.NimbusError as exc:  # one unreadable version fails no listing
                log.warning("handler of %s not shown: %s", fn.name, exc.message)
                return None
            found = self._old_handlers.put(key, version.handler or default)
        return found

    def view(self, fn: Function) -> FunctionView:
        runtime = RUNTIMES.get(fn.runtime)
        handler = fn.handler
        if handler is None and runtime is not None and runtime.default_handler:
            handler = self._old_handler(fn, runtime.default_handler)
        limit = code_size_limit(runtime) if runtime else SOURCE_LIMIT
        webhook = None
        if fn.webhook_enabled and fn.webhook_key:
            webhook = f"{self.settings.public_url}/webhook/{fn.webhook_key}"
        latest = None
        if fn.latest_build is not None:
            latest = BuildSummaryView(**fn.latest_build.model_dump())
        return FunctionView(
            id=fn.id,
            name=fn.name,
            runtime=fn.runtime,
            runtime_version=fn.runtime_version,
            status=fn.status,
            active_version=fn.active_version,
            latest_version=fn.latest_version,
            latest_build=latest,
            code_size=fn.code_size,
            code_size_limit=limit,
            webhook_url=webhook,
            handler=handler,
            memory_mb=fn.memory_mb,
            timeout_sec=fn.timeout_sec,
            reuse=fn.reuse,
            max_concurrency=fn.max_concurrency,
            async_retries=fn.async_retries,
            async_on_failure=fn.async_on_failure,
            env_vars={name: MASKED for name in fn.env_var_names},
            tags=fn.tags,
            description=fn.description,
            created_at=fn.created_at,
            updated_at=fn.updated_at,
        )

    # -- create and update ---------------------------------------------------

    def create(
        self, body: FunctionCreate, upload: Path | None = None, *, actor: str = ""
    ) -> tuple[Function, int]:
        """Create a function and queue the build of its version 1."""
        runtime = RUNTIMES[body.runtime]  # the schema checked the name
        self._check_source(runtime, body, upload, required=True)
        if body.files is not None and runtime.default_handler:
            kept = ("the default handler", runtime.default_handler)
            _check_handler_file(runtime, body.handler, kept, body.files)
        self._check_quota()
        fn = Function(
            id=new_id(),
            name=body.name,
            runtime=body.runtime,
            description=body.description or "",
            tags=body.tags or [],
            webhook_key=new_webhook_key(),
            webhook_enabled=body.webhook if body.webhook is not None else True,
            max_concurrency=body.max_concurrency,
            async_retries=body.async_retries or 0,
            async_on_failure=self._destination(body.async_on_failure),
        )
        source = self._store_source(runtime, body, upload, body.handler)
        self.repo.create_function(fn)
        try:
            version = self.repo.new_version(
                fn, lambda previous, n: self._derive(fn, None, body, source, n, actor)
            )
        except BaseException:
            self.repo.delete_function(fn)  # no half-created function is left behind
            raise
        self._on_enqueue()
        return self.repo.get(fn.id)[0], version.version

    def update(
        self, ref: str, body: FunctionUpdate, upload: Path | None = None, *, actor: str = ""
    ) -> tuple[Function, int | None]:
        """Apply a partial update; returns the record and the version it made, if any."""
        fn, _ = self.repo.resolve(ref)
        if body.name is not None and body.name != fn.name:
            raise errors.Invalid.field("name", "names are immutable")
        if body.runtime is not None and (new := RUNTIMES.canonical(body.runtime)) != fn.runtime:
            raise errors.Invalid.field(
                "runtime",
                f"{fn.name} is a {fn.runtime} function, not {new}: a function's runtime cannot "
                f"change. Deploy the new code under another name or delete {fn.name} first",
            )
        runtime = self._runtime_of(fn)
        touched = {f for f in _CONFIG_FIELDS if getattr(body, f) is not None}
        self._check_source(runtime, body, upload, required=False)
        if body.files is not None and runtime.default_handler:
            kept = ("the function's handler",
                    fn.handler or self._old_handler(fn, runtime.default_handler))  # fmt: skip
            _check_handler_file(runtime, body.handler, kept, body.files)
        made = None
        if touched or upload is not None:
            handler = body.handler
            if body.code is not None and handler is None and fn.base_version:
                # new code keeps the file name the current handler gives it
                handler = self.repo.get_version(fn.id, fn.base_version)[0].handler
            source = self._store_source(runtime, body, upload, handler)
            made = self.repo.new_version(
                fn, lambda previous, n: self._derive(fn, previous, body, source, n, actor)
            ).version
            self._on_enqueue()
            if self._on_new_version is not None:
                self._on_new_version(fn.id)
        return self._update_meta(fn.id, body), made

    def _destination(self, name: str | None) -> str | None:
        """An on-failure destination must name a function that exists now."""
        if name is None:
            return None
        try:
            return self.repo.resolve(name)[0].name
        except errors.NotFound:
            raise errors.Invalid.field(
                "async_on_failure", f"there is no function {name!r} to send failures to"
            ) from None

    def _update_meta(self, function_id: str, body: FunctionUpdate) -> Function:
        destination = self._destination(body.async_on_failure)

        def apply(fn: Function) -> Function:
            if body.tags is not None:
                fn.tags = body.tags
            if body.description is not None:
                fn.description = body.description
            if body.webhook is not None:
                fn.webhook_enabled = body.webhook
            if "max_concurrency" in body.model_fields_set:  # null removes the cap
                fn.max_concurrency = body.max_concurrency
            if body.async_retries is not None:
                fn.async_retries = body.async_retries
            if "async_on_failure" in body.model_fields_set:  # null removes it
                fn.async_on_failure = destination
            if body.status is not None:
                fn.disabled = body.status == "offline"
            fn.updated_at = now()
            return fn

        return self.repo.update_function(function_id, apply)

    def _check_quota(self) -> None:
        """At MAX_FUNCTIONS a create is refused with 409 `quota_exceeded`.

        NOTE: a count, not a reservation: creates racing at the limit may pass
        it by the number in flight.
        """
        count, limit = self.repo.count_functions(), self.settings.max_functions
        if count >= limit:
            raise errors.Conflict(
                f"the platform holds {count} functions; the limit is {limit}",
                code="quota_exceeded",
                details={"limit": limit, "functions": count},
            )

    @staticmethod
    def _runtime_of(fn: Function) -> Runtime:
        runtime = RUNTIMES.get(fn.runtime)
        if runtime is None:  # made by a server that had a runtime this one lacks
            raise errors.Conflict(
                f"function {fn.name}'s runtime {fn.runtime!r} is not known to this server",
                code="unknown_runtime",
            )
        return runtime

    def _check_source(self, runtime: Runtime, body, upload: Path | None, *, required: bool) -> None:
        given = [f for f in ("code", "files", "artifact_base64") if getattr(body, f) is not None]
        if upload is not None:
            given.append("artifact")
        if len(given) > 1:
            raise errors.Invalid.field(
                given[1], f"give only one of code, files or an artifact, not {given}"
            )
        name = runtime.name
        if runtime.kind == "binary":
            if given and given[0] in ("code", "files"):
                raise errors.Invalid.field(
                    given[0], f"a {name} function takes an artifact, not source"
                )
            if required and not given:
                raise errors.Invalid.field(
                    "artifact_base64", f"a {name} function needs an artifact"
                )
        else:
            if given and given[0] in ("artifact_base64", "artifact"):
                raise errors.Invalid.field(
                    given[0], f"a {name} function takes source (code or files)"
                )
            if required and not given:
                raise errors.Invalid.field("code", f"a {name} function needs code or files")
        handler = getattr(body, "handler", None)
        if handler is not None and not runtime.takes_handler:
            takers = ", ".join(r.name for r in RUNTIMES if r.takes_handler)
            raise errors.Invalid.field(
                "handler",
                f"a {name} function takes no handler: its binary is called as it is (a "
                f"handler names a function in the source of {takers})",
            )
        if handler is not None and runtime.default_handler:
            # A runtime that calls a function by name: a handler it cannot split would only
            # fail the build, after a 201.
            module, _, function = handler.rpartition(".")
            if not module or not _HANDLER_FUNCTION.match(function):
                raise errors.Invalid.field(
                    "handler",
                    f"{handler!r} is not module.function (e.g. {runtime.default_handler!r}: "
                    f"the function {runtime.default_handler.rpartition('.')[2]} "
                    f"in {runtime.code_filename(runtime.default_handler)})",
                )
        memory = getattr(body, "memory_mb", None)
        if memory is not None:
            floor = memory_floor(runtime, self.settings)
            if not floor <= memory <= self.settings.max_memory_mb:
                raise errors.Invalid.field(
                    "memory_mb", f"must be between {floor} and {self.settings.max_memory_mb}"
                )
        form = getattr(body, "form", None)
        if form is not None and form not in runtime.forms:
            # NOTE: `"form": "program"` on a Python function was stored and ignored.
            raise errors.Invalid.field(
                "form", f"a {runtime.name} function takes only the {runtime.forms[0]} form"
            )
        if getattr(body, "target", None) == "native" and not runtime.native_allowed:
            *others, last = [r.name for r in RUNTIMES if r.native_allowed]
            allowed = f"{', '.join(others)} and {last}" if others else last
            raise errors.Invalid.field(
                "target", f"only {allowed} build to (or take) a native binary"
            )
        if getattr(body, "reuse", None) and (
            not runtime.reuse_allowed or getattr(body, "target", None) == "native"
        ):
            raise errors.Invalid.field(
                "reuse", "native binaries run as processes: no instance to reuse"
            )
        timeout = getattr(body, "timeout_sec", None)
        if timeout is not None and timeout > self.settings.max_timeout_sec:
            raise errors.Invalid.field(
                "timeout_sec", f"must be at most {self.settings.max_timeout_sec:g}"
            )

    def _store_source(
        self, runtime: Runtime, body, upload: Path | None, handler: str | None
    ) -> dict | None:
        """Store the new source or artifact; None when the update keeps the previous one."""
        if upload is not None:
            size = upload.stat().st_size
            if size > BINARY_LIMIT:
                raise errors.TooLarge(f"the artifact is {size} bytes; the limit is {BINARY_LIMIT}")
            key, sha = self.repo.put_blob_file(upload)
            return {"key": key, "sha": sha, "kind": "binary", "size": size}
        if body.artifact_base64 is not None:
            try:
                data = base64.b64decode(body.artifact_base64, validate=True)
            except (binascii.Error, ValueError):
                raise errors.Invalid.field("artifact_base64", "is not valid base64") from None
            if len(data) > BINARY_LIMIT:
                raise errors.TooLarge(
                    f"the artifact is {len(data)} bytes; the limit is {BINARY_LIMIT}"
                )
            key, sha = self.repo.put_blob(data)
            return {"key": key, "sha": sha, "kind": "binary", "size": len(data)}
        files = body.files
        if body.code is not None:
            # The handler names the file: "main.handler" stores main.py (issue 21).
            files = {runtime.code_filename(handler): body.code}
        if files is None:
            return None
        size = sum(len(text.encode()) for text in files.values())
        if size > SOURCE_LIMIT:
            raise errors.TooLarge(f"the source is {size} bytes; the limit is {SOURCE_LIMIT}")
        key, sha = self.repo.put_blob(orjson.dumps(files, option=orjson.OPT_SORT_KEYS))
        return {"key": key, "sha": sha, "kind": "files", "size": size}

    def _derive(
        self, fn: Function, previous: Version | None, body, source: dict | None, n: int, actor: str
    ) -> Version:
        exclude = {"version", "created_at", "created_by", "build"}
        base = previous.model_dump(exclude=exclude) if previous else {}
        if previous is None:
            base.update(
                function_id=fn.id,
                runtime=fn.runtime,
                handler=RUNTIMES[fn.runtime].default_handler,
                memory_mb=self.settings.default_memory_mb,
                timeout_sec=self.settings.default_timeout_sec,
                env_vars={},
                requirements=[],
            )
        if source is not None:
            base.update(
                source_key=source["key"],
                source_kind=source["kind"],
                source_sha256=source["sha"],
                code_size=source["size"],
            )
        for field in ("handler", "requirements", "memory_mb", "timeout_sec", "env_vars", "reuse"):
            value = getattr(body, field)
            if value is not None:
                if field == "env_vars":
                    value = self.env.seal(_keep_masked(value, base.get("env_vars") or {}))
                base[field] = value
        for field in ("form", "target"):
            if field in body.model_fields_set:
                base[field] = getattr(body, field)
        base["description"] = body.description if body.description is not None else fn.description
        base["memory_mb"] = max(
            base["memory_mb"], memory_floor(RUNTIMES[fn.runtime], self.settings)
        )
        return Version(version=n, created_by=actor, **base)

    # -- reading -------------------------------------------------------------

    def get(self, ref: str) -> Function:
        return self.repo.resolve(ref)[0]

    def list(
        self,
        *,
        name: str | None = None,
        tags: list[str] | None = None,
        runtime: str | None = None,
        status: str | None = None,
        limit: int = 20,
        offset: int = 0,
    ) -> FunctionList:
        if not 1 <= limit <= 100:
            raise errors.Invalid.field("limit", "must be between 1 and 100")
        if offset < 0:
            raise errors.Invalid.field("offset", "must not be negative")
        if runtime is not None:
            wanted = RUNTIMES.canonical(runtime)
            if wanted is None:
                raise errors.Invalid.field("runtime", f"unknown runtime {runtime!r}")
            runtime = wanted
        statuses = [s.value for s in FunctionStatus]
        if status is not None and status not in statuses:
            raise errors.Invalid.field(
                "status", f"unknown status {status!r}; use one of {', '.join(statuses)}"
            )
        matches = [
            fn
            for fn in self.repo.list_functions()
            if (name is None or name in fn.name)
            and (not tags or set(tags) <= set(fn.tags))
            and (runtime is None or fn.runtime == runtime)
            and (status is None or fn.status == status)
        ]
        matches.sort(key=lambda fn: (fn.created_at, fn.id))
        page = matches[offset : offset + limit]
        return FunctionList(
            functions=[self.view(fn) for fn in page], total=len(matches), limit=limit, offset=offset
        )

    def code(self, ref: str, version: int | None) -> tuple[Version, bytes]:
        fn = self.get(ref)
        number = version or fn.base_version  # what the next update starts from
        record, _ = self.repo.get_version(fn.id, number)
        return record, self.repo.read_blob(record.source_key)

    def build(self, ref: str, version: int | None) -> BuildView:
        fn = self.get(ref)
        record, _ = self.repo.get_version(fn.id, version or fn.latest_version)
        log = self.repo.build_log(fn.id, record.version)
        build = record.build
        return BuildView(
            function_id=fn.id,
            version=record.version,
            status=build.status,
            error=build.error,
            errors=[
                BuildErrorView(**found.as_dict())
                for found in parse_build_errors(build.error or None)
                or (parse_build_errors(log) if build.status == BuildStatus.failed else [])
            ],
            attempts=build.attempts,
            runtime_version=build.runtime_version,
            queued_at=build.queued_at,
            started_at=build.started_at,
            finished_at=build.finished_at,
            log=log,
        )

    def wait_for_build(self, function_id: str, version: int, timeout: float) -> None:
        """Block until the version's build has ended and the function record shows it.

        The builder publishes to the function record right after the version
        record, so the record is what a caller reads next and what we watch.
        """
        deadline = time.monotonic() + timeout
        delay = 0.02
        while time.monotonic() < deadline:
            fn, _ = self.repo.get(function_id)
            if self._build_shown(fn, version):
                return
            time.sleep(delay)
            delay = min(delay * 1.5, 0.25)

    def _build_shown(self, fn: Function, version: int) -> bool:
        latest = fn.latest_build
        if latest is not None and latest.version == version:
            return latest.status in (BuildStatus.ready, BuildStatus.failed)
        # a newer version was made meanwhile: look at our own version's record
        record, _ = self.repo.get_version(fn.id, version)
        if record.build.status == BuildStatus.ready:
            return (fn.active_version or 0) >= version
        return record.build.status == BuildStatus.failed

    def rotate_webhook(self, ref: str) -> Function:
        return self.repo.rotate_webhook(self.get(ref).id, new_webhook_key())

    # -- delete and bulk -----------------------------------------------------

    def delete(self, ref: str) -> None:
        fn = self.get(ref)
        self.repo.delete_function(fn)

    def bulk_delete(self, ids: list[str]) -> BulkResult:
        return self._bulk(ids, self.delete)

    def bulk_update(self, body: BulkUpdate) -> BulkResult:
        meta = FunctionUpdate(status=body.status, tags=body.tags)
        return self._bulk(body.ids, lambda ref: self._update_meta(self.get(ref).id, meta))

    def _bulk(self, ids: list[str], action: Callable[[str], object]) -> BulkResult:
        success, failed = [], []
        for ref in ids:
            try:
                action(ref)
                success.append(ref)
            except errors.NimbusError as exc:
                failed.append(BulkFailure(id=ref, error={"code": exc.code, "message": exc.message}))
        return BulkResult(success=success, failed=failed)
