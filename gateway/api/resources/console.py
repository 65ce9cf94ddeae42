"""The web console: its HTML shell at `/` and its hashed assets under `/assets/`.

The assets are built at install time (`scripts/console.sh`, from `console/`) into the
console package's `static/` folder; nothing here is generated per request but the CSP nonce.
"""

from __future__ import annotations

import re
import secrets
from pathlib import Path

import falcon

from ..middleware import public

# Every name esbuild writes: `[name]-[hash].ext`, plus its precompressed `.gz` twin.
_ASSET_NAME = re.compile(r"^[A-Za-z0-9_.-]+\.(js|css|txt|map)\Z")
_TYPES = {
    "js": "text/javascript; charset=utf-8",
    "css": "text/css; charset=utf-8",
    "txt": "text/plain; charset=utf-8",
    "map": "application/json",
}
_YEAR = "public, max-age=31536000, immutable"


def content_security_policy(nonce: str) -> str:
    """No inline script at all; style tags only with this response's nonce (CodeMirror's)."""
    return "; ".join(
        [
            "default-src 'none'",
            "script-src 'self'",
            f"style-src 'self' 'nonce-{nonce}'",
            "img-src 'self' data:",
            "font-src 'self'",
            "connect-src 'self'",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        ]
    )


def _hardening(resp: falcon.Response) -> None:
    # NOTE(security): webhooks share this origin (their pages are sandboxed, see
    # middleware.SANDBOX): no console answer may be framed, by a webhook's page or any
    # other page. The shell's opener policy (below) also leaves a page of another origin
    # that opens the console, or that the console opens, no handle on the console's window.
    resp.set_header("X-Content-Type-Options", "nosniff")
    resp.set_header("Referrer-Policy", "no-referrer")
    resp.set_header("X-Frame-Options", "DENY")


class ConsoleFiles:
    """The built console in one folder: `index.html` and `assets/`, read once per worker
    (the shell again when its file changes: assets have hashed names, the shell does not)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._cache: dict[str, bytes] = {}
        self._shell: tuple[int, str] | None = None  # (mtime_ns, text)

    def shell(self) -> str | None:
        # NOTE: a rebuild under a running server (`make install` while `make run` serves)
        # replaces the assets; a shell kept from before named an entry that is gone, and
        # every page failed with "Failed to fetch dynamically imported module".
        path = self.folder / "index.html"
        try:
            mtime = path.stat().st_mtime_ns
        except OSError:
            return None
        if self._shell is None or self._shell[0] != mtime:
            self._shell = (mtime, path.read_text())
        return self._shell[1]

    def asset(self, name: str) -> bytes | None:
        """An asset by its exact file name; only names esbuild writes, only from `assets/`."""
        return self._read(name) if _ASSET_NAME.match(name) else None

    def gzipped(self, name: str) -> bytes | None:
        """The build's gzip of an asset, when it made one."""
        return self._read(name + ".gz") if _ASSET_NAME.match(name) else None

    def _read(self, name: str) -> bytes | None:
        if name not in self._cache:
            path = self.folder / "assets" / name
            if not path.is_file():
                return None
            self._cache[name] = path.read_bytes()
        return self._cache[name]


@public
class ConsoleShellResource:
    def __init__(self, files: ConsoleFiles) -> None:
        self.files = files

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        _hardening(resp)
        resp.cache_control = ["no-cache"]
        shell = self.files.shell()
        if shell is None:
            resp.status = 503
            resp.content_type = falcon.MEDIA_TEXT
            resp.text = "The console is not built: run `make install` (scripts/console.sh).\n"
            return
        # NOTE(security): a fresh nonce per response, so a cached shell never lends its nonce.
        nonce = secrets.token_urlsafe(18)
        resp.set_header("Content-Security-Policy", content_security_policy(nonce))
        resp.set_header("Cross-Origin-Opener-Policy", "same-origin")
        resp.content_type = falcon.MEDIA_HTML
        resp.text = shell.replace("{{nonce}}", nonce)


@public
class ConsoleAssetResource:
    def __init__(self, files: ConsoleFiles) -> None:
        self.files = files

    def on_get(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        data = self.files.asset(name)
        if data is None:
            raise falcon.HTTPNotFound(title="not_found", description=f"no console asset {name!r}")
        _hardening(resp)
        resp.content_type = _TYPES[name.rsplit(".", 1)[1]]
        resp.cache_control = [_YEAR]
        resp.vary = ["Accept-Encoding"]
        compressed = self.files.gzipped(name)
        if compressed is not None and "gzip" in (req.get_header("Accept-Encoding") or ""):
            resp.set_header("Content-Encoding", "gzip")
            data = compressed
        resp.data = data
