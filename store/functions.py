"""Function, version and build-queue records on top of any `Store`.

Key layout (all JSON unless noted):

    functions/<id>.json                 Function
    names/<name>.json                   NameClaim (create-only: names are unique)
    versions/<id>/<n:08d>.json          Version (with its Build state)
    queue/builds/<id>.<n:08d>           build queue marker (empty)
    webhooks/<sha256 of key>.json       WebhookIndex: webhook key → function id (and alias)
    history/<fn>/…                      HistoryEntry: rollbacks, alias, canary changes (history.py)
    blobs/sha256/<hex>                  sources and artifacts, content-addressed (blobs.py:
                                        marks, and how unreferenced ones are freed)
    logs/builds/<id>/<n:08d>.log        build log (text)
    logs/invocations/<id>/…             invocation log batches (store/logs.py)
    logs/sweep.json                     lease: which worker sweeps expired logs, until when
    stats/workers/<writer>.json         one worker's running invocation totals (its own)
    stats/total.json                    totals folded in from workers that stopped
    schedules/by-function/<id>/<sid>.json
                                        Schedule (store/schedules.py has the rest of its layout)

Version numbers are claimed with create-only writes, each new version derived
from the one before it, so concurrent updates get contiguous numbers and none
of them is lost.
"""

from __future__ import annotations

import contextlib
import hashlib
import random
import re
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

from pydantic import BaseModel

from . import errors
from ._base import Store
from .blobs import BlobRepo, blob_key
from .buildcache import BuildCacheRepo
from .invocations import InvocationRepo
from .leases import Claim, Leases
from .logs import invocation_log_prefix
from .records import (
    FUNCTION_ID_RE,
    NAME_RE,
    BuildSummary,
    Function,
    NameClaim,
    Version,
    WebhookIndex,
    now,
    parse_record,
)

M = TypeVar("M", bound=BaseModel)

# A name claim whose function record never appeared is a crashed create.
_STALE_CLAIM_SEC = 60
_CAS_ATTEMPTS = 200


def function_key(function_id: str) -> str:
    return f"functions/{function_id}.json"


def name_key(name: str) -> str:
    return f"names/{name}.json"


def version_key(function_id: str, version: int) -> str:
    return f"versions/{function_id}/{version:08d}.json"


def build_marker_key(function_id: str, version: int) -> str:
    return f"queue/builds/{function_id}.{version:08d}"


def webhook_index_key(webhook_key: str) -> str:
    # NOTE(security): named by the key's SHA-256, so whoever may list the bucket (or
    # read DATA_DIR's folder names) learns no working webhook URL from object names.
    return f"webhooks/{hashlib.sha256(webhook_key.encode()).hexdigest()}.json"


def _legacy_webhook_index_key(webhook_key: str) -> str:
    """Where an index entry was kept before it was named by hash (migrated on start)."""
    return f"webhooks/{webhook_key}.json"


_HASHED_INDEX = re.compile(r"^webhooks/[0-9a-f]{64}\.json\Z")


def build_log_key(function_id: str, version: int) -> str:
    return f"logs/builds/{function_id}/{version:08d}.log"


def stats_worker_key(writer: str) -> str:
    return f"stats/workers/{writer}.json"


STATS_TOTAL_KEY = "stats/total.json"
# Bumped on every schedule change (and on deleting a function that had
# schedules): tickers reload their schedules when its etag moves.
SCHEDULES_CHANGED_KEY = "schedules/changed"


def schedule_prefix(function_id: str) -> str:
    return f"schedules/by-function/{function_id}/"


def _backoff(attempt: int) -> None:
    time.sleep(min(0.05, 0.001 * (2 ** min(attempt, 6))) * random.random())


class FunctionRepo:
    def __init__(self, store: Store) -> None:
        self.store = store
        self._written: list[Callable[[str], None]] = []

    def on_function_written(self, callback: Callable[[str], None]) -> None:
        """Call `callback(function_id)` after this repo creates, changes or deletes a
        function record (a per-worker cache drops its copy: read-your-writes)."""
        self._written.append(callback)

    def _note_written(self, function_id: str) -> None:
        for callback in self._written:
            callback(function_id)

    # -- generic JSON records ------------------------------------------------

    def read(self, key: str, model: type[M]) -> tuple[M, str]:
        blob = self.store.get(key)
        return parse_record(model, blob.data, key), blob.etag

    def write(self, key: str, record: BaseModel, **conditions) -> str:
        return self.store.put(key, record.model_dump_json().encode(), **conditions)

    def update(self, key: str, model: type[M], mutate: Callable[[M], M | None]) -> M:
        """Read-modify-write with compare-and-swap; `mutate` may return None for no change."""
        for attempt in range(_CAS_ATTEMPTS):
            record, etag = self.read(key, model)
            changed = mutate(record)
            if changed is None:
                return record
            try:
                self.write(key, changed, if_match=etag)
                return changed
            except errors.Conflict:
                _backoff(attempt)
        raise errors.Unavailable(f"too much contention updating {key}")

    # -- blobs ---------------------------------------------------------------

    def put_blob(self, data: bytes) -> tuple[str, str]:
        """Store bytes content-addressed; identical bytes share one object."""
        return BlobRepo(self.store).put(data)

    def put_blob_file(self, path, sha256: str | None = None) -> tuple[str, str]:
        """Store a large file content-addressed, streaming it (`sha256` if already known)."""
        return BlobRepo(self.store).put_file(path, sha256)

    @staticmethod
    def blob_key(sha256: str) -> str:
        """Where the blob with this digest is (or would be) stored."""
        return blob_key(sha256)

    def build_cache(self) -> BuildCacheRepo:
        """The build cache's records, kept in the same store (store/buildcache.py)."""
        return BuildCacheRepo(self.store)

    def blob_exists(self, key: str) -> bool:
        return self.store.exists(key)

    def read_blob(self, key: str) -> bytes:
        """A source or artifact by the key a record holds (`source_key`, `artifact_key`)."""
        return self.store.get(key).data

    def blob_to_file(self, key: str, path) -> None:
        """Download a (large) source or artifact to `path`."""
        self.store.get_file(key, path)

    # -- functions -----------------------------------------------------------

    def etag(self, function_id: str, *, quick: bool = False) -> str | None:
        """The function record's current etag, None once deleted (a cheap revalidation;
        `quick`: one short attempt, for a caller with a fallback)."""
        return self.store.head(function_key(function_id), quick=quick)

    def create_function(self, fn: Function) -> None:
        """Claim the name, then write the record; a name in use raises Conflict."""
        claim = NameClaim(function_id=fn.id)
        try:
            self.write(name_key(fn.name), claim, create=True)
        except errors.Conflict:
            self._take_over_stale_claim(fn)
        if fn.webhook_key:
            self.write(webhook_index_key(fn.webhook_key), WebhookIndex(function_id=fn.id))
        self.write(function_key(fn.id), fn, create=True)
        self._note_written(fn.id)

    def _take_over_stale_claim(self, fn: Function) -> None:
        try:
            old, etag = self.read(name_key(fn.name), NameClaim)
        except errors.NotFound:
            return self.write(name_key(fn.name), NameClaim(function_id=fn.id), create=True)
        age = (now() - old.created_at).total_seconds()
        if self.store.exists(function_key(old.function_id)) or age < _STALE_CLAIM_SEC:
            raise errors.Conflict(f"a function named {fn.name!r} already exists", code="name_taken")
        self.write(name_key(fn.name), NameClaim(function_id=fn.id), if_match=etag)

    def get(self, function_id: str) -> tuple[Function, str]:
        try:
            return self.read(function_key(function_id), Function)
        except errors.NotFound:
            raise errors.NotFound(f"function {function_id!r} not found") from None

    def resolve(self, ref: str) -> tuple[Function, str]:
        """Find a function by id or by name."""
        if not (NAME_RE.match(ref) or FUNCTION_ID_RE.match(ref)):  # no such name can exist
            name, colon, _ = ref.partition(":")
            # A target (`invoke hello:prod`, then `logs hello:prod`) says what to name instead.
            if colon and NAME_RE.match(name):
                raise errors.NotFound(
                    f"function {ref!r} not found: name:alias and name:version are for invoking "
                    f"(…/invoke, …/async); here name the function alone ({name!r})"
                )
            raise errors.NotFound(f"function {ref!r} not found")
        if ref.startswith("fn_"):
            return self.get(ref)
        try:
            claim, _ = self.read(name_key(ref), NameClaim)
        except (errors.NotFound, errors.Invalid):
            raise errors.NotFound(f"function {ref!r} not found") from None
        return self.get(claim.function_id)

    def update_function(self, function_id: str, mutate: Callable[[Function], Function | None]):
        """Compare-and-swap the record; a change that would serve a version a prune has
        claimed writes nothing and is a 404, as that version is as good as gone."""
        gone: list[int] = []
        wrote = [False]  # the last attempt's: the one that was written, if any

        def guarded(current: Function) -> Function | None:
            before = current.versions_in_use()
            changed = mutate(current)
            if changed is not None:
                gone[:] = sorted((changed.versions_in_use() - before) & set(changed.pruning))
                if gone:
                    changed = None
            wrote[0] = changed is not None
            return changed

        try:
            fn = self.update(function_key(function_id), Function, guarded)
        except errors.NotFound:
            raise errors.NotFound(f"function {function_id!r} not found") from None
        if wrote[0]:
            self._note_written(function_id)
        if gone:
            raise errors.NotFound(f"function {fn.name} has no version {gone[0]}")
        return fn

    def claim_for_pruning(self, function_id: str, doomed: list[int], listed: list[int]):
        """Claim `doomed` versions for deletion in the function record, less any it now
        serves; returns the claimed ones, which no later write can make serve again.
        Claims of versions no longer `listed` (deleted) are dropped."""
        claimed: list[int] = []

        def claim(current: Function) -> Function | None:
            in_use = current.versions_in_use()
            claimed[:] = [number for number in doomed if number not in in_use]
            pending = {number for number in current.pruning if number in listed}
            pruning = sorted(pending | set(claimed))
            if pruning == current.pruning:
                return None
            current.pruning = pruning
            return current

        self.update_function(function_id, claim)
        return claimed

    def release_pruning(self, function_id: str, numbers: list[int]) -> None:
        """Drop a prune's claim on `numbers` (something came to pin them meanwhile)."""

        def release(current: Function) -> Function | None:
            kept = [number for number in current.pruning if number not in numbers]
            if kept == current.pruning:
                return None
            current.pruning = kept
            return current

        self.update_function(function_id, release)

    def version_kept(self, function_id: str, number: int) -> bool:
        """Whether version `number` exists and no prune has claimed it (both read afresh):
        what may be pinned by a schedule or a workflow's Task."""
        fn, _ = self.get(function_id)
        if number in fn.pruning:
            return False
        try:
            self.get_version(function_id, number)
        except errors.NotFound:
            return False
        return True

    def list_functions(self) -> Iterator[Function]:
        """Every function record. One that does not read back is left out (parse_record
        logs it; asked for by name it is `RecordUnreadable`): it made every listing, the
        quota and the stats overview a 500."""
        for key in self.store.list("functions/"):
            try:
                yield self.read(key, Function)[0]
            except (errors.NotFound, errors.RecordUnreadable):
                continue  # deleted while we listed, or unreadable

    def count_functions(self) -> int:
        """How many functions exist: one listing, no reads."""
        return sum(1 for _ in self.store.list("functions/"))

    def delete_function(self, fn: Function) -> None:
        """Remove the record first (it stops serving), then its name and versions."""
        self.store.delete(function_key(fn.id))
        self._note_written(fn.id)
        try:
            claim, etag = self.read(name_key(fn.name), NameClaim)
            if claim.function_id == fn.id:
                self.store.delete(name_key(fn.name), if_match=etag)
        except (errors.NotFound, errors.Conflict):
            pass
        for key in [fn.webhook_key, *(a.webhook_key for a in fn.aliases.values())]:
            if key:
                self.drop_webhook(key)
        schedules = list(self.store.list(schedule_prefix(fn.id)))
        InvocationRepo(self.store).delete_finished_of(fn.id)
        for prefix in (
            f"versions/{fn.id}/",
            f"history/{fn.id}/",
            f"logs/builds/{fn.id}/",
            f"queue/builds/{fn.id}.",
            invocation_log_prefix(fn.id),
        ):
            self.store.delete_prefix(prefix)
        self.store.delete_keys(schedules)
        if schedules:
            self.note_schedules_changed()

    def note_schedules_changed(self) -> None:
        self.store.put(SCHEDULES_CHANGED_KEY, now().isoformat().encode())

    def function_exists(self, function_id: str) -> bool:
        return self.store.exists(function_key(function_id))

    def webhook_target(self, webhook_key: str) -> WebhookIndex:
        """The function (and alias, for an alias's URL) a webhook key was given to."""
        try:
            return self.read(webhook_index_key(webhook_key), WebhookIndex)[0]
        except (errors.NotFound, errors.Invalid):
            raise errors.NotFound("no webhook at this address") from None

    def function_for_webhook(self, webhook_key: str) -> str:
        """The id a webhook key was given to (check the function record still has it)."""
        try:
            return self.read(webhook_index_key(webhook_key), WebhookIndex)[0].function_id
        except (errors.NotFound, errors.Invalid):
            pass
        try:  # an entry from before the index was hashed, not migrated yet
            index = self.read(_legacy_webhook_index_key(webhook_key), WebhookIndex)[0]
        except (errors.NotFound, errors.Invalid):
            raise errors.NotFound("no webhook at this address") from None
        self._move_index_entry(_legacy_webhook_index_key(webhook_key), webhook_key, index)
        return index.function_id

    def migrate_webhook_index(self) -> int:
        """Rename index entries named by the key itself to the key's hash; returns how many."""
        moved = 0
        for name in list(self.store.list("webhooks/")):
            if _HASHED_INDEX.match(name):
                continue
            webhook_key = name[len("webhooks/") : -len(".json")]
            try:
                index = self.read(name, WebhookIndex)[0]
            except (errors.NotFound, errors.Invalid):
                continue
            self._move_index_entry(name, webhook_key, index)
            moved += 1
        return moved

    def _move_index_entry(self, legacy: str, webhook_key: str, index: WebhookIndex) -> None:
        with contextlib.suppress(errors.Conflict):  # another worker moved it first
            self.write(webhook_index_key(webhook_key), index, create=True)
        self.store.delete(legacy)

    def index_webhook(self, webhook_key: str, index: WebhookIndex) -> None:
        """Point a (new) webhook key at its function (and alias), before a record holds it."""
        self.write(webhook_index_key(webhook_key), index)

    def drop_webhook(self, webhook_key: str) -> None:
        """Forget a webhook key no record holds any more (its old index entry too)."""
        self.store.delete(webhook_index_key(webhook_key))
        self.store.delete(_legacy_webhook_index_key(webhook_key))

    def rotate_webhook(self, function_id: str, new_key: str) -> Function:
        """Give the function a new webhook key; the old one stops working."""
        old: list[str] = []

        def apply(fn: Function) -> Function:
            old[:] = [fn.webhook_key] if fn.webhook_key else []
            fn.webhook_key = new_key
            fn.updated_at = now()
            return fn

        # index first: a key in a record never lacks its index entry
        self.write(webhook_index_key(new_key), WebhookIndex(function_id=function_id))
        fn = self.update_function(function_id, apply)
        for key in old:
            self.drop_webhook(key)
        return fn

    # -- versions ------------------------------------------------------------

    def get_version(self, function_id: str, version: int) -> tuple[Version, str]:
        try:
            return self.read(version_key(function_id, version), Version)
        except errors.NotFound:
            pass
        # The message names the function as its caller did, as an unknown alias's does (one
        # more read, on this path only).
        try:
            name = self.get(function_id)[0].name
        except errors.NotFound:
            name = function_id
        raise errors.NotFound(f"function {name} has no version {version}")

    def version_references(self, fn: Function) -> dict[int, list[str]]:
        """Every version of `fn` something refers to → what does (never pruned)."""
        from .references import version_references  # they read schedules, workflows, queues

        return version_references(self.store, fn)

    def alias_references(self, fn: Function, alias: str) -> list[str]:
        """What names `fn:alias` and would break if the alias went."""
        from .references import alias_references

        return alias_references(self.store, fn, alias)

    def version_numbers(self, function_id: str) -> list[int]:
        """The function's version numbers, oldest first, from one listing (no reads)."""
        prefix = f"versions/{function_id}/"
        return [int(key[len(prefix) :].removesuffix(".json")) for key in self.store.list(prefix)]

    def list_versions(self, function_id: str) -> list[Version]:
        out = []
        for key in self.store.list(f"versions/{function_id}/"):
            try:
                out.append(self.read(key, Version)[0])
            except errors.NotFound:
                continue
        return out

    def new_version(
        self, fn: Function, derive: Callable[[Version | None, int], Version]
    ) -> Version:
        """Claim the next version number and write `derive(previous, n)` there.

        Each version is derived from the one just below it, so a partial update
        racing another never drops the other's change; the first after a rollback
        from the version the rollback serves (`Function.base_version`). The queue marker is
        written before the version so a crash between the two leaves no
        version that no build worker will find.
        """
        n, base = fn.latest_version + 1, fn.base_version
        for attempt in range(_CAS_ATTEMPTS):
            previous = self.get_version(fn.id, base)[0] if base else None
            version = derive(previous, n)
            if previous is not None and version.source_key == previous.source_key:
                BlobRepo(self.store).reuse(version.source_key)  # kept code: a new reference
            self.store.put(build_marker_key(fn.id, n), b"")
            try:
                self.write(version_key(fn.id, n), version, create=True)
            except errors.Conflict:
                n += 1
                base = n - 1  # another's new version: made after any rollback
                _backoff(attempt)
                continue
            self._note_new_version(fn.id, version)
            return version
        raise errors.Unavailable(f"too much contention creating a version of {fn.id}")

    def _note_new_version(self, function_id: str, version: Version) -> None:
        def bump(fn: Function) -> Function | None:
            if fn.latest_version >= version.version:
                return None
            fn.note_latest(version)
            fn.latest_build = BuildSummary(version=version.version, status=version.build.status)
            fn.updated_at = now()
            return fn

        self.update_function(function_id, bump)

    def delete_version(self, function_id: str, version: int) -> None:
        """Remove a version's record and build log (pruning; its blobs are freed by the
        artifact collection's blob sweep once nothing else names them, store/blobs.py)."""
        self.store.delete(version_key(function_id, version))
        self.store.delete(build_log_key(function_id, version))

    def update_version(
        self, function_id: str, version: int, mutate: Callable[[Version], Version | None]
    ) -> Version:
        return self.update(version_key(function_id, version), Version, mutate)

    # -- build queue ---------------------------------------------------------

    def queued_builds(self) -> list[tuple[str, int]]:
        out = []
        for key in self.store.list("queue/builds/"):
            name = key.rsplit("/", 1)[1]
            function_id, _, n = name.rpartition(".")
            if n.isdigit():
                out.append((function_id, int(n)))
        return out

    def drop_build_marker(self, function_id: str, version: int) -> None:
        self.store.delete(build_marker_key(function_id, version))

    def claim_build(
        self, leases: Leases, function_id: str, version: int, **how
    ) -> Claim[Version] | None:
        """Claim a version for its build (`how`: as for `Leases.claim`); NotFound if
        the version was never written."""
        return leases.claim(version_key(function_id, version), Version, **how)

    def build_log(self, function_id: str, version: int) -> str:
        """A build's log so far ("" before the build wrote any)."""
        try:
            return self.store.get(build_log_key(function_id, version)).data.decode(errors="replace")
        except errors.NotFound:
            return ""

    def put_build_log(self, function_id: str, version: int, text: str) -> str:
        """Store a build's log (so far); returns its key."""
        key = build_log_key(function_id, version)
        self.store.put(key, text.encode())
        return key
