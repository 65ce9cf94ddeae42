"""Functions' environment variables, optionally encrypted at rest.

With `NIMBUS_ENV_KEYS` set (one or more secrets, comma-separated, kept outside
the store), every value a version stores is sealed with Fernet (AES-128-CBC +
HMAC-SHA256) under the first; any of them opens it, so a key can be rotated by
putting the new one first. Values stored before (plain) are still read; a
sealed value without the key is a clear 503, never garbage in a guest's env.
"""

from __future__ import annotations

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from store import errors

SEALED = "nimbus:sealed:v1:"


def _fernet(secret: str) -> Fernet:
    # Any secret string → a Fernet key (32 bytes, url-safe base64).
    return Fernet(base64.urlsafe_b64encode(hashlib.sha256(secret.encode()).digest()))


class EnvCipher:
    def __init__(self, secrets: list[str]) -> None:
        self._fernet = MultiFernet([_fernet(s) for s in secrets]) if secrets else None

    @classmethod
    def from_setting(cls, value: str | None) -> EnvCipher:
        return cls([s.strip() for s in (value or "").split(",") if s.strip()])

    @property
    def sealing(self) -> bool:
        return self._fernet is not None

    def seal(self, env: dict[str, str]) -> dict[str, str]:
        """Values as they are stored: sealed when a key is set (sealed ones stay as they are)."""
        if self._fernet is None:
            return dict(env)
        return {
            name: value
            if value.startswith(SEALED)
            else SEALED + self._fernet.encrypt(value.encode()).decode()
            for name, value in env.items()
        }

    def open(self, env: dict[str, str]) -> dict[str, str]:
        """Values as the guest sees them."""
        opened = {}
        for name, value in env.items():
            if not value.startswith(SEALED):
                opened[name] = value
                continue
            if self._fernet is None:
                raise errors.Unavailable(
                    f"env var {name} is encrypted and NIMBUS_ENV_KEYS is not set on this server"
                )
            try:
                opened[name] = self._fernet.decrypt(value[len(SEALED) :].encode()).decode()
            except InvalidToken:
                raise errors.Unavailable(
                    f"env var {name} was encrypted with a key NIMBUS_ENV_KEYS does not hold"
                ) from None
        return opened
