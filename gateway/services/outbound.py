"""HTTP requests the server sends to URLs users gave it (alert webhooks).

NOTE(security): a user-given URL called from the server is a server-side request
forgery risk: it could reach the cloud metadata service (169.254.169.254), the
store's endpoint or anything else on the server's private network. So, as
GitLab and Gitea do by default, only http(s) URLs are accepted and, unless
ALERT_WEBHOOK_ALLOW_PRIVATE is set, the host must resolve to public addresses
only. The check is made when a rule is saved (for literal addresses) and at
every delivery, on the addresses actually connected to: the request goes to the
checked address itself (Host header and TLS name kept), so a DNS answer that
changes between the check and the connection (rebinding) cannot redirect it.
Redirects are never followed. Receivers on a private network (a chat relay, an
Alertmanager on the LAN) need ALERT_WEBHOOK_ALLOW_PRIVATE=true.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import httpx

from store import errors

MAX_URL_LENGTH = 2048
USER_AGENT = "nimbus-alerts/1"


class Refused(Exception):
    """The URL may not be called from this server (a reason for the history)."""


def is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def check_url(url: str, *, allow_private: bool, field: str = "notify.webhook_url") -> str:
    """The URL if it may be saved; 422 naming `field` otherwise."""
    if len(url) > MAX_URL_LENGTH:
        raise errors.Invalid.field(field, f"at most {MAX_URL_LENGTH} characters")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError as exc:
        raise errors.Invalid.field(field, f"not a URL: {exc}") from None
    if parts.scheme not in ("http", "https"):
        raise errors.Invalid.field(field, "only http:// and https:// URLs are called")
    if not parts.hostname:
        raise errors.Invalid.field(field, "the URL names no host")
    if not allow_private:
        try:
            literal = ipaddress.ip_address(parts.hostname)
        except ValueError:
            literal = None  # a name: checked on every delivery, once resolved
        if literal is not None and not is_public(str(literal)):
            message = (
                f"{parts.hostname} is not a public address "
                "(ALERT_WEBHOOK_ALLOW_PRIVATE=true allows it)"
            )
            raise errors.Invalid.field(field, message)
    return url


@dataclass(frozen=True)
class Answer:
    status_code: int
    duration_ms: float


class OutboundClient:
    """POSTs to user-given URLs under the address policy; one per worker, thread-safe."""

    def __init__(self, *, allow_private: bool, timeout_sec: float = 5.0) -> None:
        self.allow_private = allow_private
        # Connection failures are retried once at once (httpx's transport retries);
        # anything else is retried later, with backoff, by the caller.
        self._client = httpx.Client(
            timeout=timeout_sec,
            follow_redirects=False,
            trust_env=False,  # the guard checks the address connected to, not a proxy's
            transport=httpx.HTTPTransport(retries=1),
            headers={"User-Agent": USER_AGENT},
        )

    def post(self, url: str, body: bytes, headers: dict[str, str]) -> Answer:
        """Send; `Refused` if policy forbids the URL, `httpx.HTTPError` if it fails."""
        parts = urlsplit(url)
        target, extensions = url, {}
        headers = {"Content-Type": "application/json", **headers}
        if not self.allow_private:
            address = self._public_address(parts)
            userinfo, _, hostport = parts.netloc.rpartition("@")
            host = f"[{address}]" if ":" in address else address
            netloc = f"{host}:{parts.port}" if parts.port else host
            netloc = f"{userinfo}@{netloc}" if userinfo else netloc
            target = urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))
            headers["Host"] = hostport
            if parts.scheme == "https":
                extensions["sni_hostname"] = parts.hostname  # TLS checks the real name
        started = time.perf_counter()
        response = self._client.post(target, content=body, headers=headers,
                                     extensions=extensions)  # fmt: skip
        return Answer(response.status_code, (time.perf_counter() - started) * 1000)

    @staticmethod
    def _public_address(parts) -> str:
        host = parts.hostname or ""
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise Refused(f"{host} does not resolve: {exc.strerror}") from None
        addresses = [info[4][0] for info in found]
        private = [a for a in addresses if not is_public(a)]
        if private or not addresses:
            shown = private[0] if private else "none"
            raise Refused(f"{host} resolves to a non-public address ({shown}); "
                          "ALERT_WEBHOOK_ALLOW_PRIVATE=true allows it")  # fmt: skip
        return addresses[0]

    def close(self) -> None:
        self._client.close()
