"""A small REST client: the CLI and the MCP server talk to Nimbus only through this."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import httpx

from .errors import ApiError


def default_key() -> str | None:
    key = os.environ.get("NIMBUS_API_KEY")
    if key:
        return key
    path = Path(os.environ.get("DATA_DIR", "./data")) / "api_key"
    return path.read_text().strip() if path.is_file() else None


class Client:
    def __init__(self, url: str, key: str | None, timeout: float = 330) -> None:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.http = httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=timeout)

    def request(self, method: str, path: str, **kw: Any) -> httpx.Response:
        try:
            resp = self.http.request(method, path, **kw)
        except httpx.HTTPError as exc:
            raise ApiError(0, "unreachable", f"{self.http.base_url}: {exc}") from None
        if resp.status_code >= 400 and not resp.headers.get("X-Nimbus-Function-Error"):
            try:
                error = resp.json()["error"]
                raise ApiError(resp.status_code, error["code"], error["message"])
            except (ValueError, KeyError, TypeError):
                raise ApiError(resp.status_code, "error", resp.text[:500]) from None
        return resp

    def json(self, method: str, path: str, **kw: Any) -> Any:
        resp = self.request(method, path, **kw)
        return resp.json() if resp.content else None
