"""The embedded default: objects as files under one folder.

Writes go to a temp file in the same folder and are renamed into place, so a
reader sees the old or the new bytes, never half. Conditional writes are real
compare-and-swap between processes: the check and the rename happen under an
`flock` on one of a fixed set of lock files chosen by the key's hash.

The file system's own failures (disk full, read-only, no permission) are
`errors.Unavailable`, as an S3 store's refusals are: callers retry, answer 503
and keep what they could not write, instead of failing with a bare `OSError`.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from . import errors
from ._base import Blob, Store, check_key

_LOCK_STRIPES = 64


def _etag(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


@contextlib.contextmanager
def _os_errors(key: str) -> Iterator[None]:
    try:
        yield
    except OSError as exc:
        raise errors.Unavailable(f"the local store cannot serve {key}: {exc}") from exc


def _stripe(key: str) -> int:
    """Which lock file guards `key`."""
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=2).digest()) % _LOCK_STRIPES


def _unlink(path: Path) -> None:
    # NOTE: a key that is only a prefix of others (a folder) is no object either
    with contextlib.suppress(FileNotFoundError, NotADirectoryError, IsADirectoryError):
        path.unlink()


class LocalStore(Store):
    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()
        self._objects = self.root / "objects"
        self._locks = self.root / "locks"
        self._objects.mkdir(parents=True, exist_ok=True)
        self._locks.mkdir(parents=True, exist_ok=True)

    def __repr__(self) -> str:
        return f"LocalStore({str(self.root)!r})"

    def _path(self, key: str) -> Path:
        check_key(key)
        return self._objects / key

    @contextlib.contextmanager
    def _locked(self, key: str) -> Iterator[None]:
        with self._stripe_locked(_stripe(key)):
            yield

    @contextlib.contextmanager
    def _stripe_locked(self, stripe: int) -> Iterator[None]:
        fd = os.open(self._locks / f"{stripe:02d}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing drops the lock

    def _read(self, path: Path) -> bytes | None:
        try:
            return path.read_bytes()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return None  # IsADirectory: the key is only a prefix of others

    def _check(self, key: str, path: Path, create: bool, if_match: str | None) -> None:
        current = self._read(path)
        if create and current is not None:
            raise errors.Conflict(f"{key} already exists")
        if if_match is not None and (current is None or _etag(current) != if_match):
            raise errors.Conflict(f"{key} changed since it was read")

    def _write_atomic(self, path: Path, fill) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as f:
                fill(f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise

    def get(self, key: str, *, quick: bool = False) -> Blob:
        path = self._path(key)
        with _os_errors(key):
            data = self._read(path)
        if data is None:
            raise errors.NotFound(f"{key} not found")
        return Blob(data, _etag(data))

    def head(self, key: str, *, quick: bool = False) -> str | None:
        path = self._path(key)
        with _os_errors(key):
            data = self._read(path)
        return None if data is None else _etag(data)

    def put(
        self, key: str, data: bytes, *, create: bool = False, if_match: str | None = None
    ) -> str:
        path = self._path(key)
        with _os_errors(key), self._locked(key):
            self._check(key, path, create, if_match)
            self._write_atomic(path, lambda f: f.write(data))
        return _etag(data)

    def delete(self, key: str, *, if_match: str | None = None) -> None:
        path = self._path(key)
        with _os_errors(key), self._locked(key):
            if if_match is not None:
                self._check(key, path, False, if_match)
            _unlink(path)

    def delete_keys(self, keys: Iterable[str]) -> None:
        # PERF: each lock file taken once for all its keys, not once a key.
        by_stripe: dict[int, list[str]] = {}
        for key in keys:
            check_key(key)
            by_stripe.setdefault(_stripe(key), []).append(key)
        for stripe, group in by_stripe.items():
            with _os_errors(group[0]), self._stripe_locked(stripe):
                for key in group:
                    _unlink(self._objects / key)

    def delete_prefix(self, prefix: str) -> int:
        deleted = super().delete_prefix(prefix)
        with _os_errors(prefix):
            self._prune_folders(prefix)
        return deleted

    def _prune_folders(self, prefix: str) -> None:
        """Remove the folders under `prefix` left empty, so that listings do not walk
        them for ever (an hour of window stats leaves a folder per function).

        NOTE(safety): under every lock, so that no write (which holds its key's lock)
        is between making its folder and putting its temp file there."""
        folder, _, rest = prefix.rpartition("/")
        base = self._objects / folder if folder else self._objects
        tops: list[str | Path] = [base] if folder and not rest else []
        if not tops:  # the folders in `base` whose names start with the prefix's last part
            with contextlib.suppress(FileNotFoundError), os.scandir(base) as entries:
                tops = [e.path for e in entries if e.is_dir() and e.name.startswith(rest)]
        with contextlib.ExitStack() as every_lock:
            for stripe in range(_LOCK_STRIPES):
                every_lock.enter_context(self._stripe_locked(stripe))
            for top in tops:
                for dirpath, _, _ in os.walk(top, topdown=False):
                    with contextlib.suppress(OSError):  # not empty, or gone
                        os.rmdir(dirpath)

    def list(self, prefix: str) -> Iterator[str]:
        # Walk only the folder the prefix names, then filter by the rest.
        folder, _, _ = prefix.rpartition("/")
        base = self._objects / folder if folder else self._objects
        if not base.is_dir():
            return iter(())
        keys = []
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames.sort()
            rel = os.path.relpath(dirpath, self._objects)
            for name in filenames:
                if name.startswith(".tmp-"):
                    continue
                key = name if rel == "." else f"{rel}/{name}"
                if key.startswith(prefix):
                    keys.append(key)
        return iter(sorted(keys))

    def put_file(self, key: str, path: Path) -> str:
        target = self._path(key)
        digest = hashlib.blake2b(digest_size=16)

        def fill(f) -> None:
            with open(path, "rb") as src:
                while chunk := src.read(1 << 20):
                    digest.update(chunk)
                    f.write(chunk)

        with _os_errors(key), self._locked(key):
            self._write_atomic(target, fill)
        return digest.hexdigest()

    def get_file(self, key: str, path: Path) -> None:
        source = self._path(key)
        if not source.is_file():
            raise errors.NotFound(f"{key} not found")
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        os.close(fd)
        try:
            shutil.copyfile(source, tmp)
            os.replace(tmp, path)
        except BaseException as exc:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            if isinstance(exc, FileNotFoundError) and not source.exists():
                raise errors.NotFound(f"{key} not found") from None  # deleted meanwhile
            raise

    def ping(self) -> None:
        if not self._objects.is_dir():
            raise errors.Unavailable(f"store folder {self._objects} is missing")
