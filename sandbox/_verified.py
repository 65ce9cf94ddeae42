"""Which precompiled files on local disk this machine has already hashed.

A shared runtime's `.cwasm` is ~37 MB; hashing it costs 40-60 ms, and every
fresh worker process used to pay that on its first load. After a file's
sha256 has been checked once, a small record in our own cache folder pins it
by identity: device, inode, size, mtime and ctime. A later process trusts the
file without reading it only while all of those still match; any write to
the file, a replacement, a rename over it or a chmod changes its ctime (which
user space cannot set), so a changed file is hashed again and, if it no
longer matches, thrown away.

Racy files (git's "racily clean" problem): the kernel stamps ctime from a
coarse clock, so a write within the same tick as the verified state could
keep the same ctime. A record is therefore only written for a file whose
ctime is at least `_SETTLED_NS` in the past; a fresher file is simply hashed
again next time.

Trust boundary: the records sit in the platform's own cache folder, which
nothing but the platform writes (created 0700). Whoever can write there can
also replace a `.cwasm` with one named by its own hash, so the records add
no new way in; they save the re-hash.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import secrets
import time
from pathlib import Path

log = logging.getLogger("nimbus.sandbox")

_SETTLED_NS = 1_000_000_000  # far above any filesystem timestamp granularity
_FIELDS = ("st_dev", "st_ino", "st_size", "st_mtime_ns", "st_ctime_ns")


def _identity(st: os.stat_result) -> list[int]:
    return [getattr(st, name) for name in _FIELDS]


class VerifiedFiles:
    """Records of files whose sha256 was checked, kept in `folder` (ours alone)."""

    def __init__(self, folder: Path) -> None:
        self._folder = Path(folder)

    def _record_path(self, path: Path) -> Path:
        # Keyed by the file's absolute path: a seed copy and our own copy of the
        # same bytes are different files with different identities.
        name = hashlib.sha256(str(Path(path).absolute()).encode()).hexdigest()[:32]
        return self._folder / f"{name}.json"

    def check(self, path: Path, sha256: str, fd: int) -> bool:
        """Whether the file open at `fd` (opened from `path`) hashes to `sha256`: from
        its record when it is unchanged since, else by hashing it (and recording that)."""
        before = os.fstat(fd)
        if self._recorded(path, sha256, before):
            return True
        if hash_open_file(fd) != sha256:
            return False
        after = os.fstat(fd)
        if _identity(after) == _identity(before):  # not written to while we read it
            self._remember(path, sha256, after)
        return True

    def _recorded(self, path: Path, sha256: str, st: os.stat_result) -> bool:
        try:
            record = json.loads(self._record_path(path).read_bytes())
            return (
                record["path"] == str(Path(path).absolute())
                and record["sha256"] == sha256
                and record["identity"] == _identity(st)
            )
        except (OSError, ValueError, KeyError, TypeError):
            return False  # no record, or an unreadable one: hash the file

    def _remember(self, path: Path, sha256: str, st: os.stat_result) -> None:
        """Record that the file at `path`, as `st` describes it, hashes to `sha256`."""
        if time.time_ns() - st.st_ctime_ns < _SETTLED_NS:
            return  # racy: a write in the same clock tick would not show
        record = {"path": str(Path(path).absolute()), "sha256": sha256, "identity": _identity(st)}
        final = self._record_path(path)
        tmp = final.with_name(f".tmp-{os.getpid()}-{secrets.token_hex(4)}")
        try:
            self._folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            tmp.write_text(json.dumps(record))
            os.replace(tmp, final)
        except OSError as exc:  # only a missed saving: the next load hashes again
            log.info("cannot record verified %s: %s", path, exc)
            tmp.unlink(missing_ok=True)


def hash_open_file(fd: int) -> str:
    """sha256 of the whole file open at `fd`, read from its start."""
    with open(os.dup(fd), "rb") as f:
        f.seek(0)
        return hashlib.file_digest(f, "sha256").hexdigest()
