"""The build queue: workers take queued versions under a lease and build them.

Every version is a durable build job (its `Build` state) with a marker under
`queue/builds/`. A worker claims a job through the lease primitive
(`store.Leases.claim`: one conditional write sets `building` and a lease),
renews the lease while it works and writes the outcome only if the lease is
still its own. A job whose lease ran out (its worker crashed or was killed)
is claimed again, at most `max_attempts` times, then failed — never stuck.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import orjson

import compiler
from sandbox import Deployment, Mount
from store import Claim, LeaseLost, Leases, errors
from store.functions import FunctionRepo
from store.history import HistoryRepo
from store.records import (
    BuildMount,
    BuildStatus,
    BuildSummary,
    Function,
    HistoryEntry,
    Version,
    now,
)

from ..background import BackgroundLoop
from .polling import IdlePolling

log = logging.getLogger("nimbus.builds")
_UNREADABLE_RECHECK_SEC = 60.0  # a version that does not read back (RecordUnreadable)

# (artifact_key, sha256) → precompiled key: the sandbox's step after a build.
Precompile = Callable[[str, str], str]
# A shared-runtime deployment → the runtime's facts; raises errors.Invalid for
# source its interpreter refuses (the sandbox's `check`).
CheckSource = Callable[[Deployment], str]
# (runtime, "ready" | "failed", seconds from claim to outcome): e.g. a metric.
BuildObserver = Callable[[str, str, float], None]

_OUTCOME_FIELDS = ("artifact_key", "artifact_sha256", "artifact_kind", "precompiled_key",
                   "runtime_version", "bundle_key", "bundle_sha256", "mounts")  # fmt: skip


class BuildQueue:
    def __init__(
        self,
        repo: FunctionRepo,
        leases: Leases,
        *,
        workdir: Path,
        concurrency: int,
        lease_sec: float,
        poll_sec: float,
        max_attempts: int,
        idle_poll_max_sec: float | None = None,
        precompile: Precompile | None = None,
        build_config: compiler.BuildConfig | None = None,
        check_source: CheckSource | None = None,
        on_finished: BuildObserver | None = None,
        history: HistoryRepo | None = None,
    ) -> None:
        self.repo = repo
        self.history = history  # where a version that starts serving is noted
        self.leases = leases
        self.workdir = workdir
        self.concurrency = concurrency
        self.lease_sec = lease_sec
        self.poll_sec = poll_sec
        # None: look every poll_sec even while the queue stays empty
        self.idle_poll_max_sec = poll_sec if idle_poll_max_sec is None else idle_poll_max_sec
        self.max_attempts = max_attempts
        self.precompile = precompile
        self.build_config = build_config or compiler.BuildConfig()
        self.check_source = check_source
        self._shared_files: dict[tuple, tuple[str, str]] = {}
        self.on_finished = on_finished
        self._thread_state = threading.local()  # each build thread backs off on its own
        self._loop = BackgroundLoop("build", self._step, threads=concurrency,
                                    error_wait_sec=poll_sec)  # fmt: skip
        # (function id, version) of a marker seen without its version → when first seen.
        self._orphans: dict[tuple[str, int], float] = {}
        self._unreadable: dict[tuple[str, int], float] = {}  # → when to read it again
        self._orphans_lock = threading.Lock()
        self._queue_empty = False  # as the last look found it
        # The builds this worker runs, each with its folder; those `stop` abandoned.
        self._running: dict[tuple[str, int], tuple[Claim[Version], Path]] = {}
        self._abandoned: set[tuple[str, int]] = set()
        self._running_lock = threading.Lock()

    # -- lifecycle -----------------------------------------------------------

    def start(self) -> None:
        # A worker killed mid-build left its folder's tmpfs mounted (memory held).
        for folder in compiler.release_orphans(self._ensure_workdir()):
            shutil.rmtree(folder.parent, ignore_errors=True)
        self._loop.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Take no new build; a build still running after `timeout` is handed back, queued
        for any worker at once. Its lease would otherwise keep it from every other worker
        for up to BUILD_LEASE_SEC after this one is gone, and the attempt would count
        toward BUILD_MAX_ATTEMPTS: a long build caught by three restarts failed for good.

        Then it is abandoned: its jailed processes are killed and its tmpfs unmounted, so
        nothing of it outlives this worker (its thread ends with the process, before its
        own cleanup: the tmpfs stayed mounted, holding what the build wrote in memory, on
        a server that was not started again on the same data folder)."""
        self._loop.stop(timeout)
        with self._running_lock:
            leftovers = dict(self._running)
            self._abandoned.update(leftovers)  # its thread writes no outcome now
        for claim, folder in leftovers.values():
            with contextlib.suppress(LeaseLost, errors.NimbusError):  # else its lease runs out
                self.leases.finish(claim, _hand_back)
                log.info("build of %s v%s handed back at shutdown",
                         claim.record.function_id, claim.record.version)  # fmt: skip
            compiler.abandon_build(folder)
            shutil.rmtree(folder, ignore_errors=True)

    def wake(self) -> None:
        self._loop.wake()

    def _step(self) -> float:
        if self.run_once():
            return 0.0  # another build may be waiting: look again at once
        if not hasattr(self._thread_state, "polling"):
            self._thread_state.polling = IdlePolling(self.poll_sec, self.idle_poll_max_sec)
        return self._thread_state.polling.after(empty=self._queue_empty)

    # -- one job -------------------------------------------------------------

    def run_once(self) -> bool:
        """Claim and run one build; False when there was nothing to do."""
        queued = self.repo.queued_builds()
        self._queue_empty = not queued
        wall = time.time()
        for function_id, number in queued:
            if self._loop.stopping.is_set():
                return False
            if self._unreadable.get((function_id, number), 0.0) > wall:
                continue
            claim = self._claim(function_id, number)
            if claim is not None:
                self._run(claim)
                return True
        return False

    def _claim(self, function_id: str, number: int) -> Claim[Version] | None:
        try:
            claim = self.repo.claim_build(
                self.leases, function_id, number, duration_sec=self.lease_sec,
                ready=self._unfinished, begin=_begin, max_attempts=self.max_attempts,
                exhausted=self._give_up,
            )  # fmt: skip
            if self._orphans:
                with self._orphans_lock:
                    self._orphans.pop((function_id, number), None)  # its version came
            return claim
        except errors.RecordUnreadable as exc:
            # Passed over for a while (logged each time): it stopped every pass, and the
            # queue is taken in order, so nothing queued after it was ever built.
            log.error("build of %s version %d cannot run: %s", function_id, number, exc.message)
            self._unreadable[(function_id, number)] = time.time() + _UNREADABLE_RECHECK_SEC
            return None
        except errors.NotFound:
            # The creator died before writing the version (or the function is gone).
            if not self.repo.function_exists(function_id) or self._marker_old(function_id, number):
                self.repo.drop_build_marker(function_id, number)
            return None

    def _unfinished(self, version: Version) -> bool:
        if version.build.status in (BuildStatus.ready, BuildStatus.failed):
            self._settle(version)  # the function record and marker may lag a crash
            return False
        return True

    def _give_up(self, claim: Claim[Version]) -> None:
        def failed(version: Version) -> None:
            version.build.status = BuildStatus.failed
            version.build.error = (
                f"the build was interrupted {version.build.attempts} times; giving up"
            )
            version.build.finished_at = now()

        with contextlib.suppress(LeaseLost):  # someone else settled it
            self.leases.finish(claim, failed)
            self._settle(claim.record)

    def _settle(self, version: Version) -> None:
        self._publish(version)  # idempotent
        self.repo.drop_build_marker(version.function_id, version.version)

    def _marker_old(self, function_id: str, number: int) -> bool:
        """Has this marker waited long enough for its version to be written?

        The creator writes the marker, then the version. Without a modification time in
        the Store interface, a marker without a version is given one lease period (from
        when this worker first saw it) to be joined by its version before it is dropped.
        NOTE: a count of looks is not a time: build threads, wake-ups and back-to-back
        passes looked twice within milliseconds under load, dropped the marker of a
        version written a moment later, and that version stayed `queued` for good.
        """
        key = (function_id, number)
        seen_now = time.monotonic()
        with self._orphans_lock:
            first_seen = self._orphans.setdefault(key, seen_now)
            if seen_now - first_seen < self.lease_sec:
                return False
            del self._orphans[key]
            return True

    def _run(self, claim: Claim[Version]) -> None:
        version = claim.record
        folder = Path(
            tempfile.mkdtemp(
                prefix=f"{version.function_id}-{version.version}-", dir=self._ensure_workdir()
            )
        )
        build_log = compiler.BuildLog(folder / "build.log")
        build_log.write(
            f"build of {version.function_id} v{version.version} ({version.runtime}), "
            f"attempt {version.build.attempts}, worker {self.leases.owner}"
        )
        upload_log = partial(self._upload_log, version, build_log)
        outcome: dict = {}
        key = (version.function_id, version.version)
        with self._running_lock:
            self._running[key] = (claim, folder)
        with self.leases.renewing(claim, also=upload_log):
            try:
                outcome = self._build(version, folder, build_log)
                build_log.write("build succeeded")
            except compiler.BuildFailed as exc:
                build_log.write(f"build failed: {exc.message}")
                outcome = {"error": exc.message}
            except Exception as exc:  # a platform fault, not the user's: say so plainly
                log.exception("build of %s v%s crashed", version.function_id, version.version)
                build_log.write(f"build failed: internal error: {exc}")
                outcome = {"error": f"internal build error: {exc}"}
        try:
            with self._running_lock:
                abandoned = key in self._abandoned  # at shutdown: handed back, jail killed
            if not abandoned:
                self._finish(claim, outcome, upload_log())
        except LeaseLost:
            log.warning("lost the lease of %s v%s", version.function_id, version.version)
        finally:
            with self._running_lock:
                self._running.pop(key, None)
                self._abandoned.discard(key)
            build_log.close()
            shutil.rmtree(folder, ignore_errors=True)

    def _upload_log(self, version: Version, build_log: compiler.BuildLog) -> str:
        return self.repo.put_build_log(version.function_id, version.version, build_log.text())

    def _ensure_workdir(self) -> Path:
        self.workdir.mkdir(parents=True, exist_ok=True)
        return self.workdir

    def _build(self, version: Version, folder: Path, build_log: compiler.BuildLog) -> dict:
        builder = compiler.builder_for(version.runtime, self.build_config)
        files, binary = None, None
        if version.source_kind == "files":
            files = orjson.loads(self.repo.read_blob(version.source_key))
        else:
            binary = folder / "upload.bin"
            self.repo.blob_to_file(version.source_key, binary)
        request = compiler.BuildRequest(
            function_id=version.function_id,
            version=version.version,
            runtime=version.runtime,
            handler=version.handler,
            form=version.form,
            target=version.target,
            files=files,
            binary=binary,
            requirements=version.requirements,
        )
        out = folder / "out"
        out.mkdir()
        # One size bound over all the build writes (BUILD_MAX_DISK_MB); gone when it ends.
        with compiler.bounded_folder(out, self.build_config.max_disk_mb) as bounded:
            if bounded:
                build_log.write(f"build folder: {self.build_config.max_disk_mb} MB at most")
            result, key, sha = self._build_or_reuse(builder, request, out, build_log)
            precompiled = None
            if self.precompile is not None and result.kind in ("module", "component", "runtime"):
                started = time.monotonic()
                try:
                    precompiled = self.precompile(key, sha)
                except errors.NimbusError as exc:
                    message = f"the artifact does not load: {exc.message}"
                    raise compiler.BuildFailed(message) from None
                build_log.write(f"precompiled in {time.monotonic() - started:.2f}s")
            parts = self._runtime_parts(version, result, (key, sha), build_log, files or {})
            return {
                "artifact_key": key,
                "artifact_sha256": sha,
                "artifact_kind": result.kind,
                "precompiled_key": precompiled,
                "runtime_version": result.runtime_version,
                **parts,
            }

    def _runtime_parts(
        self,
        version: Version,
        result,
        runtime: tuple[str, str],
        build_log: compiler.BuildLog,
        files: dict[str, str],
    ) -> dict:
        """A shared-runtime build: store the function's bundle and mounts (content-addressed,
        so the runtime's stdlib is stored once), then have the runtime check the source."""
        if result.kind != "runtime":
            return {}
        bundle_key, bundle_sha = self.repo.put_blob_file(result.bundle)
        mounts = [
            BuildMount(guest_path=guest, key=key, sha256=sha)
            for guest, (key, sha) in (
                (guest, self._put_shared(path)) for guest, path in result.mounts.items()
            )
        ]
        if self.check_source is not None:
            dep = Deployment(
                function_id=version.function_id,
                function_name=version.function_id,
                version=version.version,
                artifact_key=runtime[0],
                artifact_sha256=runtime[1],
                kind="runtime",
                memory_mb=version.memory_mb,
                timeout_sec=30,
                handler=version.handler or "",
                source_key=bundle_key,
                source_sha256=bundle_sha,
                mounts=tuple(Mount(m.guest_path, m.key, m.sha256) for m in mounts),
            )
            started = time.monotonic()
            try:
                facts = self.check_source(dep)
            except errors.NimbusError as exc:
                stack = getattr(exc, "stack", None) or []
                text = "\n".join([exc.message, *stack])
                raise compiler.BuildFailed(compiler.with_python_column(text, files)) from None
            build_log.write(f"source checked by the runtime in {time.monotonic() - started:.2f}s: "
                            f"{facts}")  # fmt: skip
        return {"bundle_key": bundle_key, "bundle_sha256": bundle_sha, "mounts": mounts}

    def _put_shared(self, path: Path) -> tuple[str, str]:
        """Store a file that many builds name (a shared runtime, its stdlib archive).

        PERF(builds): hashing the ~50 MB of the Python runtime took ~0.3-0.6 s of
        every build; a file is hashed once per process while its size and
        mtime stay the same, and only uploaded if the store lacks it.
        """
        stat = path.stat()
        memo = (str(path), stat.st_size, stat.st_mtime_ns)
        known = self._shared_files.get(memo)
        # Through put_blob_file even when known: its touch keeps a sweep from freeing
        # the blob between here and this build's version record (store/blobs.py).
        found = self.repo.put_blob_file(path, known[1] if known else None)
        if len(self._shared_files) > 64:
            self._shared_files.clear()
        self._shared_files[memo] = found
        return found

    def _build_or_reuse(
        self,
        builder: compiler.Builder,
        request: compiler.BuildRequest,
        out: Path,
        build_log: compiler.BuildLog,
    ) -> tuple[compiler.BuildResult, str, str]:
        """Build and store the artifact, or reuse the one an identical build made."""
        cache = compiler.BuildCache(self.repo.build_cache())
        cache_key = cache.key_for(builder, request)
        hit = cache.get(cache_key) if cache_key else None
        if hit is not None:
            build_log.write(
                f"unchanged since the build of {hit.function_id} v{hit.version}: reusing its "
                f"artifact {hit.artifact_key} ({hit.size} bytes; build cache {cache_key[:16]})"
            )
            result = compiler.BuildResult(out, hit.artifact_kind, hit.runtime_version)
            return result, hit.artifact_key, hit.artifact_sha256
        result = builder.build(request, out, build_log)
        if result.kind == "runtime":
            key, sha = self._put_shared(result.artifact)
        else:
            key, sha = self.repo.put_blob_file(result.artifact)
        size = result.artifact.stat().st_size
        build_log.write(f"artifact {key} ({size} bytes)")
        if cache_key:
            cache.put(
                cache_key,
                compiler.CachedBuild(
                    artifact_key=key,
                    artifact_sha256=sha,
                    artifact_kind=result.kind,
                    runtime_version=result.runtime_version,
                    size=size,
                    function_id=request.function_id,
                    version=request.version,
                ),
            )
        return result, key, sha

    def _finish(self, claim: Claim[Version], outcome: dict, log_key: str) -> None:
        def apply(version: Version) -> None:
            build = version.build
            build.status = BuildStatus.failed if "error" in outcome else BuildStatus.ready
            build.error = outcome.get("error")
            for name in _OUTCOME_FIELDS:
                if name in outcome:
                    setattr(build, name, outcome[name])
            build.finished_at = now()
            build.log_key = log_key

        self.leases.finish(claim, apply)
        version, build = claim.record, claim.record.build
        if self.on_finished is not None and build.started_at is not None:
            seconds = (build.finished_at - build.started_at).total_seconds()
            self.on_finished(version.runtime, str(build.status), seconds)
        self._settle(version)

    def _publish(self, version: Version) -> None:
        """Reflect a finished build in the function record (idempotent); a version that
        starts serving is noted in the function's history, by whoever made it."""
        replaced: list[int | None] = []  # the active version it replaced, once it does

        def apply(fn: Function) -> Function | None:
            replaced.clear()
            changed = False
            if version.version >= fn.latest_version:
                summary = BuildSummary(
                    version=version.version, status=version.build.status, error=version.build.error
                )
                if fn.latest_build != summary or fn.latest_version != version.version:
                    if version.version > fn.latest_version:
                        # Its maker never noted it (FunctionRepo.new_version's last write
                        # failed or did not come yet): note it as that write would have.
                        fn.note_latest(version)
                    fn.latest_build = summary
                    changed = True
            # NOTE: past `highest_activated` only: a rollback lowers `active_version`,
            # and a replayed publish of the version it left must not undo it.
            if version.build.status == BuildStatus.ready and version.version > max(
                fn.active_version or 0, fn.highest_activated
            ):
                replaced.append(fn.active_version)
                fn.active_version = fn.highest_activated = version.version
                fn.runtime_version = version.build.runtime_version
                if fn.rolled_back_to is not None:  # a newer build serves again
                    fn.note_latest(self._latest(fn, version))
                changed = True
            if not changed:
                return None
            fn.updated_at = now()
            return fn

        with contextlib.suppress(errors.NotFound):  # deleted while it built
            self.repo.update_function(version.function_id, apply)
        if replaced and self.history is not None:
            # NOTE: after the record write: a crash between the two loses the entry,
            # never makes two (a replayed publish finds the version active already)
            with contextlib.suppress(errors.NimbusError):
                self.history.append(version.function_id, HistoryEntry(
                    action="deploy", from_version=replaced[0], to_version=version.version,
                    actor=version.created_by or "unknown"))  # fmt: skip

    def _latest(self, fn: Function, version: Version) -> Version:
        """`fn`'s latest version: `version`, unless a newer one was made before a rollback."""
        if version.version == fn.latest_version:
            return version
        return self.repo.get_version(fn.id, fn.latest_version)[0]


def _hand_back(version: Version) -> None:
    """At shutdown: queued again for any worker, and the attempt was not the build's fault."""
    version.build.status = BuildStatus.queued
    version.build.attempts = max(0, version.build.attempts - 1)
    version.build.started_at = None


def _begin(version: Version) -> None:
    version.build.status = BuildStatus.building
    version.build.started_at = now()
    version.build.error = None
