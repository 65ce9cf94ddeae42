"""Where the CLI and the MCP server find their server: flag > environment > profile.

Profiles live in `$XDG_CONFIG_HOME/nimbus/config.toml` (mode 0600, it holds keys):

    default_profile = "default"
    [profiles.default]
    api_url = "http://localhost:8080"
    api_key = "..."
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_URL = "http://127.0.0.1:8080"
DEFAULT_PROFILE = "default"


class ConfigError(Exception):
    """The config file cannot be read, or names a profile that is not there."""


def config_path() -> Path:
    if explicit := os.environ.get("NIMBUS_CONFIG"):
        return Path(explicit)
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base) / "nimbus" / "config.toml"


def load(path: Path | None = None) -> dict[str, Any]:
    path = path or config_path()
    if not path.is_file():
        return {}
    try:
        return tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: {exc}") from None


def save(data: dict[str, Any], path: Path | None = None) -> Path:
    """Write the whole file, readable by its owner only (it holds API keys)."""
    import tomli_w

    path = path or config_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        tomli_w.dump(data, out)
    os.chmod(tmp, 0o600)  # NOTE: the umask could have narrowed it; never widened
    os.replace(tmp, path)
    return path


@dataclass
class Overrides:
    """What the command line said (None: not given)."""

    api_url: str | None = None
    api_key: str | None = None
    api_key_file: str | None = None
    profile: str | None = None
    output: str | None = None


@dataclass(frozen=True)
class Connection:
    url: str
    key: str | None
    profile: str
    sources: dict[str, str]  # which layer each value came from, for `config show`


def resolve(given: Overrides, data: dict[str, Any] | None = None) -> Connection:
    """The server and key to use: flag > environment > profile > default."""
    data = load() if data is None else data
    explicit_profile = given.profile or os.environ.get("NIMBUS_PROFILE")
    profile_name = explicit_profile or data.get("default_profile") or DEFAULT_PROFILE
    profiles = data.get("profiles", {})
    if explicit_profile and explicit_profile not in profiles:
        known = ", ".join(sorted(profiles)) or "none"
        raise ConfigError(f"no profile {explicit_profile!r} in {config_path()} (known: {known})")
    profile = profiles.get(profile_name, {})
    sources: dict[str, str] = {}

    def pick(field: str, flag: str | None, env: str) -> str | None:
        for source, value in (("flag", flag), (env, os.environ.get(env))):
            if value:
                sources[field] = source
                return value
        if profile.get(field):
            sources[field] = f"profile {profile_name}"
            return profile[field]
        return None

    url = pick("api_url", given.api_url, "NIMBUS_API_URL") or _legacy_url(sources)
    key = pick("api_key", given.api_key, "NIMBUS_API_KEY")
    key_file = given.api_key_file or os.environ.get("NIMBUS_API_KEY_FILE")
    if key is None and key_file:
        key = read_key_file(key_file)
        sources["api_key"] = f"file {key_file}"
    return Connection(url=server_url(url), key=key, profile=profile_name, sources=sources)


def server_url(url: str) -> str:
    """The server's root from what a user gives: the console's or the API's address
    (`…/api/v1`, as the server's start line names it), with or without `http://`."""
    url = url.strip().rstrip("/").removesuffix("/api/v1").rstrip("/")
    return url if "://" in url else f"http://{url}"


def _legacy_url(sources: dict[str, str]) -> str:
    # NOTE: NIMBUS_URL was the variable before NIMBUS_API_URL; still honoured, below it.
    if legacy := os.environ.get("NIMBUS_URL"):
        sources["api_url"] = "NIMBUS_URL"
        return legacy
    sources["api_url"] = "default"
    return DEFAULT_URL


def read_key_file(path: str) -> str:
    try:
        return Path(path).read_text().strip()
    except OSError as exc:
        raise ConfigError(f"cannot read the API key from {path}: {exc.strerror}") from None
