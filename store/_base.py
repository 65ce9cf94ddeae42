"""The `Store` interface every backend implements."""

from __future__ import annotations

import abc
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from . import errors


@dataclass(frozen=True, slots=True)
class StoreTimeouts:
    """How long a remote store may take before a call raises `errors.Unavailable`.

    A hung store (connections accepted, nothing answered) must cost a caller seconds,
    not boto3's default minutes. `quick_sec` bounds the calls a hot path makes that have
    a fallback (the invoke path's revalidation HEAD, `/ready`): one attempt, connect and
    read each within it. The local store has nothing to wait on and ignores these.
    """

    connect_sec: float = 2.0
    read_sec: float = 10.0  # per socket read: a response's first byte, or the next chunk
    attempts: int = 2  # total tries of a call that timed out or failed transiently
    quick_sec: float = 1.5

    @property
    def worst_case_sec(self) -> float:
        """How long one call can wait on a store that accepts connections and never
        answers: per attempt the read timeout, plus up to 1 s a PUT waits for
        `100 Continue`, plus up to 1 s of retry backoff between attempts."""
        return self.attempts * (self.read_sec + 1.0) + (self.attempts - 1) * 1.0


@dataclass(frozen=True, slots=True)
class Blob:
    """An object's bytes and the opaque version tag that conditional writes compare."""

    data: bytes
    etag: str


def check_key(key: str) -> None:
    """`errors.Invalid` unless `key` is a store key (the rules every backend keeps)."""
    parts = key.split("/")
    if not key or key.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise errors.Invalid(f"invalid store key {key!r}")
    # A NUL cannot be in a file name, a lone surrogate cannot be sent to S3: both would surface
    # as an unexplained error deep in the backend, so they are refused here, for both.
    if any(c < " " or c == "\x7f" for c in key) or (not key.isascii() and not _encodable(key)):
        raise errors.Invalid(f"invalid store key {key!r}")


def _encodable(key: str) -> bool:
    try:
        key.encode()
    except UnicodeEncodeError:
        return False
    return True


class Store(abc.ABC):
    """A flat key → bytes store with optimistic concurrency.

    Keys are `/`-separated paths of URL-safe characters. Every write returns
    the new etag. `create=True` succeeds only if the key does not exist
    (S3's `If-None-Match: *`); `if_match=etag` only if the object still has
    that etag (`If-Match`). A failed precondition raises `errors.Conflict`;
    a missing key `errors.NotFound`; an unreachable backend
    `errors.Unavailable`.
    """

    @abc.abstractmethod
    def get(self, key: str, *, quick: bool = False) -> Blob:
        """The object's bytes and etag. `quick`: as `head`'s (`/ready` reads one back)."""

    @abc.abstractmethod
    def head(self, key: str, *, quick: bool = False) -> str | None:
        """The current etag, or None if the key does not exist (a cheap revalidation).
        `quick`: within `StoreTimeouts.quick_sec`, one attempt (for a caller with a fallback)."""

    @abc.abstractmethod
    def put(
        self, key: str, data: bytes, *, create: bool = False, if_match: str | None = None
    ) -> str: ...

    @abc.abstractmethod
    def delete(self, key: str, *, if_match: str | None = None) -> None:
        """Remove a key; deleting a missing key is not an error unless `if_match` is given."""

    @abc.abstractmethod
    def list(self, prefix: str) -> Iterator[str]:
        """Keys under `prefix`, in lexicographic order."""

    def delete_keys(self, keys: Iterable[str]) -> None:
        """Delete each key, unconditionally (missing keys are not an error). Backends
        batch this: one request per 1,000 keys on S3."""
        for key in keys:
            self.delete(key)

    def delete_prefix(self, prefix: str) -> int:
        """Delete every key under `prefix` (as `list` names them); how many there were.

        A key written under the prefix while this runs may survive. An empty prefix,
        or one no key could start with (`/`, `..`), is `errors.Invalid`: a prefix
        computed from an empty name must never empty the whole store.
        """
        check_key(prefix.removesuffix("/"))
        keys = list(self.list(prefix))
        self.delete_keys(keys)
        return len(keys)

    @abc.abstractmethod
    def put_file(self, key: str, path: Path) -> str:
        """Upload a (possibly large) file without holding it in memory."""

    @abc.abstractmethod
    def get_file(self, key: str, path: Path) -> None:
        """Download an object to `path` atomically (temp file + rename)."""

    @abc.abstractmethod
    def ping(self) -> None:
        """Raise `Unavailable` unless the backend answers (within `StoreTimeouts.quick_sec`)."""

    def exists(self, key: str) -> bool:
        return self.head(key) is not None

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections; the default has nothing to release."""
