"""The API key: given by NIMBUS_API_KEY, or generated once for a local store."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from store import errors

from ..settings import Settings

MIN_KEY_LENGTH = 32  # a generated key has 256 bits (43 characters)


def key_file(settings: Settings) -> Path:
    return settings.data_dir / "api_key"


def ensure_api_key(settings: Settings) -> tuple[str, bool]:
    """Return (key, generated_now). Call once in the master, before workers fork.

    An exclusive create makes sure two servers starting on one DATA_DIR agree
    on a single key.
    """
    if settings.nimbus_api_key:
        if len(settings.nimbus_api_key) < MIN_KEY_LENGTH:
            raise errors.Invalid(
                f"NIMBUS_API_KEY must be at least {MIN_KEY_LENGTH} characters "
                "(e.g. `python3 -c 'import secrets; print(secrets.token_urlsafe(32))'`)"
            )
        return settings.nimbus_api_key, False
    if not settings.uses_local_store:
        raise errors.Invalid("NIMBUS_API_KEY is required with an S3 store")
    path = key_file(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return read_api_key(settings), False
    with os.fdopen(fd, "w") as f:
        f.write(key + "\n")
    return key, True


def read_api_key(settings: Settings) -> str:
    if settings.nimbus_api_key:
        return settings.nimbus_api_key
    key = key_file(settings).read_text().strip()
    if not key:
        raise errors.Unavailable(f"{key_file(settings)} is empty")
    return key
