"""Content-addressed blobs, and freeing those nothing refers to without racing a reuse.

    blobs/sha256/<hex>        the bytes: sources, uploaded and built artifacts, bundles
    blobs/marks/<hex>.json    BlobMark: when the blob was last stored or reused, or that
                              a sweep is deleting it
    precompiled/<hex>/…       its precompiled forms (made by the sandbox), freed with it

Identical bytes share one blob, and storing bytes that are already there uploads
nothing, so "no version names it" is not enough to delete a blob: a create may
be reusing it right now, before its version record exists. The mark settles it
with compare-and-swap on both sides:

- storing or reusing a blob first *touches* its mark (a conditional write of the
  time), then uploads the bytes if they are missing;
- a sweep deletes only a blob no record refers to whose mark is older than the
  grace period: it first *claims* the mark (a conditional write of
  `deleting_since` on the etag it read), then deletes the bytes, the precompiled
  forms and the mark.

Of a touch and a claim on one mark exactly one wins: a touch that lost waits for
the sweep to finish and uploads the bytes again; a claim that lost keeps the blob.
A blob without a mark (stored before marks existed) gets one on first sight and
waits a full grace. A reference must be written within the grace of its touch
(a create writes its version at once; a build writes its artifact's version as
soon as it uploaded it).
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ValidationError

from . import errors
from ._base import Store

BLOB_PREFIX = "blobs/sha256/"
MARK_PREFIX = "blobs/marks/"
# A sweep that claimed a mark and then stalled this long is taken to have died:
# a reuse waiting on it takes the mark over and uploads the bytes again.
STALE_CLAIM_SEC = 60.0


def blob_key(sha256: str) -> str:
    return f"{BLOB_PREFIX}{sha256}"


def mark_key(sha256: str) -> str:
    return f"{MARK_PREFIX}{sha256}.json"


def precompiled_prefix(sha256: str) -> str:
    return f"precompiled/{sha256}/"


def sha_of(key: str) -> str | None:
    """The sha256 a blob key names, or None for another key."""
    return key[len(BLOB_PREFIX) :] if key.startswith(BLOB_PREFIX) else None


class BlobMark(BaseModel):
    touched_at: float  # Unix seconds: stored or reused
    deleting_since: float | None = None  # Unix seconds: a sweep claimed it


@dataclass
class SweepReport:
    deleted: list[str]  # blob keys
    kept_touched: int = 0  # unreferenced but touched within the grace (or claimed elsewhere)
    marked: int = 0  # unreferenced blobs without a mark: their grace starts now
    lost_races: int = 0  # a touch won the mark while this sweep looked


class BlobRepo:
    def __init__(
        self,
        store: Store,
        *,
        clock: Callable[[], float] = time.time,
        wait_sec: float = 15.0,
    ) -> None:
        self.store = store
        self.clock = clock
        self.wait_sec = wait_sec  # how long a reuse waits for a sweep deleting the blob

    # -- storing (and reusing) ------------------------------------------------

    def put(self, data: bytes) -> tuple[str, str]:
        """Store bytes content-addressed; identical bytes share one object."""
        sha = hashlib.sha256(data).hexdigest()
        key = blob_key(sha)
        self.touch(sha)
        if not self.store.exists(key):
            self.store.put(key, data)
        return key, sha

    def put_file(self, path: Path, sha256: str | None = None) -> tuple[str, str]:
        """Store a large file content-addressed, streaming it (`sha256` if already known)."""
        sha = sha256 or _file_sha256(path)
        key = blob_key(sha)
        self.touch(sha)
        if not self.store.exists(key):
            self.store.put_file(key, path)
        return key, sha

    def reuse(self, key: str) -> None:
        """A new record names a blob already stored (a config-only version keeps its
        code): touch it, and refuse (409) if it was collected meanwhile."""
        sha = sha_of(key)
        if sha is None:
            return
        self.touch(sha)
        if not self.store.exists(key):
            raise errors.Conflict(
                "the code this version would keep was collected meanwhile; send the code again",
                code="code_collected",
            )

    def touch(self, sha256: str) -> None:
        """Note a use now: no sweep deletes the blob for a grace from here.

        Waits (up to `wait_sec`) while a sweep is deleting it, then lets the
        caller upload the bytes again."""
        key = mark_key(sha256)
        deadline = time.monotonic() + self.wait_sec
        started = self.clock()
        while True:
            mark, etag = self._read_mark(key)
            wall = self.clock()
            deleting = mark is not None and mark.deleting_since is not None
            if mark is not None and not deleting and mark.touched_at >= started:
                return  # a concurrent touch since we began protects us as much as ours would
            if deleting and wall - mark.deleting_since < STALE_CLAIM_SEC:
                if time.monotonic() > deadline:
                    raise errors.Unavailable("a blob is being collected; try again", code="busy")
                time.sleep(0.05)
                continue
            body = BlobMark(touched_at=wall).model_dump_json().encode()
            try:
                self.store.put(key, body, create=etag is None, if_match=etag)
                return
            except (errors.Conflict, errors.NotFound):
                time.sleep(0.005)  # a sweep or another touch wrote it first: read again

    # -- freeing ----------------------------------------------------------------

    def sweep(self, live: Iterable[str], grace_sec: float, now: float | None = None) -> SweepReport:
        """Delete every blob not in `live` whose mark is older than `grace_sec`."""
        now = self.clock() if now is None else now
        live = set(live)
        report = SweepReport(deleted=[])
        marks = list(self.store.list(MARK_PREFIX))  # before the blobs: see _drop_orphan_marks
        stored = list(self.store.list(BLOB_PREFIX))
        for key in (key for key in stored if key not in live):
            sha = key[len(BLOB_PREFIX) :]
            outcome = self.delete_if_untouched(sha, grace_sec, now, unmarked="mark")
            if outcome == "deleted":
                report.deleted.append(key)
            elif outcome == "marked":
                report.marked += 1
            elif outcome == "lost":
                report.lost_races += 1
            else:
                report.kept_touched += 1
        self._drop_orphan_marks(marks, set(stored), grace_sec, now)
        return report

    def delete_if_untouched(
        self, sha256: str, grace_sec: float, now: float, *, unmarked: str = "delete"
    ) -> str:
        """Claim the blob's mark and delete it unless it was touched within the grace.

        `unmarked`: what a blob without a mark gets — "mark" (its grace starts now)
        or "delete" (the caller knows its age otherwise, e.g. a build-cache record).
        Returns deleted | kept | marked | lost."""
        key = mark_key(sha256)
        mark, etag = self._read_mark(key)
        if mark is None and unmarked == "mark":
            try:
                self.store.put(key, BlobMark(touched_at=now).model_dump_json().encode(),
                               create=True)  # fmt: skip
            except errors.Conflict:
                return "lost"
            return "marked"
        if mark is not None:
            if mark.deleting_since is not None and now - mark.deleting_since < STALE_CLAIM_SEC:
                return "kept"  # another sweep is on it
            if mark.deleting_since is None and now - mark.touched_at < grace_sec:
                return "kept"
        claim = BlobMark(touched_at=mark.touched_at if mark else 0.0, deleting_since=now)
        try:
            claimed = self.store.put(key, claim.model_dump_json().encode(),
                                     create=etag is None, if_match=etag)  # fmt: skip
        except (errors.Conflict, errors.NotFound):
            return "lost"
        # NOTE(safety): a reuse that waited past STALE_CLAIM_SEC may have taken the mark
        # over; check it is still ours just before the bytes go.
        if self.store.head(key) != claimed:
            return "lost"
        self.store.delete(blob_key(sha256))
        self.store.delete_prefix(precompiled_prefix(sha256))
        with contextlib.suppress(errors.Conflict, errors.NotFound):  # taken over: theirs stays
            self.store.delete(key, if_match=claimed)
        return "deleted"

    def _drop_orphan_marks(
        self, marks: list[str], stored: set[str], grace_sec: float, now: float
    ) -> None:
        """Marks whose blob is gone (a crash between deleting the two, or a touch
        whose upload never came) go once untouched for a grace. Only marks with no
        blob in the listing are read (listed first: a blob uploaded after its touch
        is seen)."""
        for key in marks:
            sha = key[len(MARK_PREFIX) : -len(".json")]
            if blob_key(sha) in stored:
                continue
            mark, etag = self._read_mark(key)
            if mark is None or self.store.exists(blob_key(sha)):
                continue
            since = mark.deleting_since if mark.deleting_since is not None else mark.touched_at
            if now - since >= max(grace_sec, STALE_CLAIM_SEC):
                with contextlib.suppress(errors.Conflict, errors.NotFound):
                    self.store.delete(key, if_match=etag)

    def _read_mark(self, key: str) -> tuple[BlobMark | None, str | None]:
        try:
            blob = self.store.get(key)
        except errors.NotFound:
            return None, None
        try:
            return BlobMark.model_validate_json(blob.data), blob.etag
        except ValidationError:
            return BlobMark(touched_at=0.0), blob.etag  # unreadable: as if old


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()
