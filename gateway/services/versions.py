"""Versions: list and read them, roll back to one, keep a history, prune the oldest.

Rollback only moves the function record's `active_version` (no rebuild):
every worker's record cache revalidates within CACHE_MAX_AGE_SEC (1 s), so
every worker serves the version within that. Pruning keeps at most
MAX_VERSIONS_PER_FUNCTION versions, deleting the oldest finished ones that
nothing refers to (`FunctionRepo.version_references`).
"""

from __future__ import annotations

import logging

from store import errors
from store.functions import FunctionRepo
from store.history import HistoryRepo
from store.records import BuildStatus, Function, HistoryEntry, Version, now

from ..schemas import FunctionHistory, FunctionHistoryEntry, VersionList, VersionView

log = logging.getLogger("nimbus.versions")


def check_page(limit: int, offset: int) -> None:
    if not 1 <= limit <= 100:
        raise errors.Invalid.field("limit", "must be between 1 and 100")
    if offset < 0:
        raise errors.Invalid.field("offset", "must not be negative")


def refuse_unready(record: Version) -> None:
    """409 unless the version can serve: `not_ready` while it builds, `build_failed`."""
    status = record.build.status
    if status == BuildStatus.failed:
        raise errors.Conflict(
            f"version {record.version} failed to build: {record.build.error}", code="build_failed"
        )
    if status != BuildStatus.ready:
        raise errors.Conflict(f"version {record.version} is still building", code="not_ready")


class VersionService:
    def __init__(self, repo: FunctionRepo, history: HistoryRepo, *, max_versions: int) -> None:
        self.repo = repo
        self.history = history
        self.max_versions = max_versions

    # -- reading ----------------------------------------------------------------

    def view(self, fn: Function, record: Version) -> VersionView:
        build = record.build
        return VersionView(
            version=record.version,
            status=build.status,
            error=build.error,
            created_at=record.created_at,
            code_size=record.code_size,
            sha256=record.source_sha256,
            artifact_sha256=build.artifact_sha256,
            runtime_version=build.runtime_version,
            handler=record.handler,
            memory_mb=record.memory_mb,
            timeout_sec=record.timeout_sec,
            env_vars={name: "****" for name in record.env_vars},
            description=record.description,
            active=fn.active_version == record.version,
            aliases=sorted(a.name for a in fn.aliases.values() if record.version in a.versions()),
        )

    def list(self, ref: str, *, limit: int = 20, offset: int = 0) -> VersionList:
        check_page(limit, offset)
        fn, _ = self.repo.resolve(ref)
        numbers = self.repo.version_numbers(fn.id)[::-1]  # newest first
        page = []
        for number in numbers[offset : offset + limit]:
            try:
                page.append(self.view(fn, self.repo.get_version(fn.id, number)[0]))
            except errors.NotFound:
                continue  # pruned while we listed
        return VersionList(versions=page, total=len(numbers), limit=limit, offset=offset)

    def get(self, ref: str, version: int) -> VersionView:
        fn, _ = self.repo.resolve(ref)
        return self.view(fn, self.repo.get_version(fn.id, version)[0])

    def history_page(self, ref: str, *, limit: int = 20, offset: int = 0) -> FunctionHistory:
        check_page(limit, offset)
        fn, _ = self.repo.resolve(ref)
        entries, total = self.history.page(fn.id, limit, offset)
        return FunctionHistory(
            entries=[FunctionHistoryEntry(**e.model_dump()) for e in entries],
            total=total,
            limit=limit,
            offset=offset,
        )

    # -- rollback ---------------------------------------------------------------

    def rollback(self, ref: str, version: int, *, actor: str, reason: str = "") -> Function:
        """Serve ready `version` at once; 404 unknown, 409 if it cannot serve."""
        fn, _ = self.repo.resolve(ref)
        target = self.repo.get_version(fn.id, version)[0]
        refuse_unready(target)
        before: list[int | None] = []

        def apply(current: Function) -> Function | None:
            before[:] = [current.active_version]
            # The next update starts from what serves, not from a newer version (one rolled
            # back from, or one that never served: v2 serving, v3 failed, `rollback 2`).
            rolled_back_to = version if version < current.latest_version else None
            if current.active_version == version and current.rolled_back_to == rolled_back_to:
                return None
            current.active_version = version
            current.runtime_version = target.build.runtime_version
            current.rolled_back_to = rolled_back_to
            current.show_config(target)
            current.updated_at = now()
            return current

        fn = self.repo.update_function(fn.id, apply)
        if before and before[0] != version:
            self.history.append(
                fn.id,
                HistoryEntry(action="rollback", from_version=before[0], to_version=version,
                             actor=actor, reason=reason),
            )  # fmt: skip
        return fn

    # -- pruning ----------------------------------------------------------------

    def prune_quietly(self, function_id: str) -> None:
        """Prune after a new version; a failure only delays pruning to the next one."""
        try:
            self.prune(function_id)
        except errors.NimbusError as exc:
            log.warning("pruning versions of %s failed: %s", function_id, exc.message)

    def prune(self, function_id: str) -> list[int]:
        """Delete the oldest finished versions nothing refers to, down to the limit."""
        numbers = self.repo.version_numbers(function_id)
        excess = len(numbers) - self.max_versions
        if excess <= 0:
            return []
        fn, _ = self.repo.get(function_id)
        referenced = self.repo.version_references(fn)
        doomed: list[int] = []
        for number in numbers[:-1]:  # never the newest
            if len(doomed) >= excess:
                break
            try:
                record = self.repo.get_version(function_id, number)[0]
            except errors.NotFound:
                continue
            if record.version in referenced or record.build.status not in (
                BuildStatus.ready,
                BuildStatus.failed,
            ):
                continue
            doomed.append(record.version)
        # A rollback or an alias change may have landed since `fn` was read: the claim,
        # a write to the function record, keeps what it now serves and stops any later
        # write from serving what is claimed.
        pruned = self.repo.claim_for_pruning(function_id, doomed, numbers) if doomed else []
        if pruned:
            # A schedule or a workflow made to pin one of them while this prune decided
            # keeps it: read again after the claim. One made later sees the claim (the
            # schedule and workflow checks read it after their own write).
            again = self.repo.version_references(self.repo.get(function_id)[0])
            pinned = [number for number in pruned if number in again]
            if pinned:
                self.repo.release_pruning(function_id, pinned)
                pruned = [number for number in pruned if number not in pinned]
        for number in pruned:
            self.repo.delete_version(function_id, number)
        if pruned:
            log.info("pruned versions %s of %s (limit %d)", pruned, fn.name, self.max_versions)
        return pruned
