"""API keys and their scopes: who is calling, and what they may do.

The first key (`NIMBUS_API_KEY`, or the one generated into `DATA_DIR`) is
`admin` and lives outside the store. More keys are made through the API with
scopes; each reads `nk_<id part>.<secret>`, and only the secret's SHA-256 is
stored. A worker caches key records for `cache_sec` (1 s): a revoked key stops
working on every worker within that.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass

from store import errors
from store.keys import KeyRepo
from store.records import ApiKey, KeyScope, now

from ..schemas import KeyCreate, KeyCreated, KeyList, KeyView

KEY_PREFIX = "nk_"
_LAST_USED_EVERY_SEC = 60.0  # how often a key's last_used_at is written, per worker
WRITE_USES_EVERY_SEC = 5.0  # the `key-last-used` periodic job's interval


@dataclass(frozen=True)
class Principal:
    """The caller an API key stands for."""

    key_id: str | None  # None: the first (admin) key
    scopes: frozenset[KeyScope]

    def may(self, *wanted: KeyScope) -> bool:
        """Whether any of `wanted` is granted (admin grants all; deploy includes read)."""
        granted = self.scopes
        if KeyScope.admin in granted:
            return True
        if KeyScope.deploy in granted:
            granted = granted | {KeyScope.read}
        return any(scope in granted for scope in wanted)


ROOT = Principal(None, frozenset({KeyScope.admin}))


def _sha256(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class KeyUses:
    """Keys used since the last write; the worker's `key-last-used` periodic job writes
    their `last_used_at` (PERF: at most once a minute per key per worker, never on the
    caller's time, and no thread per key)."""

    def __init__(self, repo: KeyRepo) -> None:
        self.repo = repo
        self._last_noted: dict[str, float] = {}
        self._due: set[str] = set()
        self._lock = threading.Lock()

    def note(self, key_id: str) -> None:
        wall = time.monotonic()
        with self._lock:
            if wall - self._last_noted.get(key_id, -_LAST_USED_EVERY_SEC) < _LAST_USED_EVERY_SEC:
                return
            self._last_noted[key_id] = wall
            self._due.add(key_id)

    def write(self) -> None:
        with self._lock:
            due, self._due = self._due, set()
        for key_id in due:
            with contextlib.suppress(errors.NimbusError):  # a revoked key: nothing to mark
                self.repo.mark_used(key_id, now())


class KeyService:
    def __init__(
        self, repo: KeyRepo, root_key: str, uses: KeyUses, *, cache_sec: float = 1.0
    ) -> None:
        self.repo = repo
        self._root = root_key.encode()
        self.uses = uses
        self.cache_sec = cache_sec
        self._cache: dict[str, tuple[float, ApiKey | None]] = {}
        self._lock = threading.Lock()

    # -- the request path ----------------------------------------------------------

    def authenticate(self, token: str) -> Principal | None:
        """The caller `token` stands for, or None for an unknown or revoked key."""
        if hmac.compare_digest(token.encode(), self._root):
            return ROOT
        if not token.startswith(KEY_PREFIX) or "." not in token:
            return None
        id_part, _, secret = token[len(KEY_PREFIX) :].partition(".")
        record = self._record("key_" + id_part)
        if record is None or not hmac.compare_digest(_sha256(secret), record.secret_sha256):
            return None
        self.uses.note(record.id)
        return Principal(record.id, frozenset(record.scopes))

    def _record(self, key_id: str) -> ApiKey | None:
        wall = time.monotonic()
        cached = self._cache.get(key_id)
        if cached is not None and wall - cached[0] < self.cache_sec:
            return cached[1]
        try:
            record: ApiKey | None = self.repo.get(key_id)
        except errors.NotFound:
            record = None  # cached too: guessing ids costs one read per id per second
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[key_id] = (wall, record)
        return record

    # -- the /api/v1/keys routes -----------------------------------------------------

    def create(self, body: KeyCreate) -> KeyCreated:
        id_part = base64.b32encode(secrets.token_bytes(10)).decode().lower()
        secret = secrets.token_urlsafe(32)
        record = ApiKey(
            id="key_" + id_part,
            name=body.name,
            scopes=sorted(set(body.scopes)),
            secret_sha256=_sha256(secret),
        )
        self.repo.create(record)
        return KeyCreated(**self.view(record).model_dump(), key=f"{KEY_PREFIX}{id_part}.{secret}")

    def list(self) -> KeyList:
        keys = sorted((self.view(k) for k in self.repo.list()), key=lambda k: k.created_at)
        return KeyList(keys=keys, total=len(keys))

    def revoke(self, key_id: str) -> None:
        self.repo.delete(key_id)
        with self._lock:
            self._cache.pop(key_id, None)

    @staticmethod
    def view(record: ApiKey) -> KeyView:
        return KeyView(
            id=record.id,
            name=record.name,
            scopes=record.scopes,
            prefix=KEY_PREFIX + record.id[len("key_") :][:6],
            created_at=record.created_at,
            last_used_at=record.last_used_at,
        )
