"""Every durable byte of the platform: records, sources, artifacts, logs.

Public surface: the `Store` interface, `open_store(url)`, the error
hierarchy, the lease primitive (`Leases`, `probe_conditional_writes`) and the
readiness check (`check_reads`).
Backends are private modules (`_local`, `_s3`).
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

from . import errors
from ._base import Blob, Store, StoreTimeouts
from ._local import LocalStore
from .leases import Claim, LeaseLost, Leases, probe_conditional_writes
from .readiness import check_reads


def open_store(
    url: str,
    *,
    endpoint_url: str | None = None,
    region: str | None = None,
    timeouts: StoreTimeouts | None = None,
) -> Store:
    """Open `file:///path` (or a bare path) or `s3://bucket/prefix`."""
    parsed = urlparse(url)
    if parsed.scheme in ("", "file"):
        return LocalStore(Path(parsed.path if parsed.scheme else url))
    if parsed.scheme == "s3":
        from ._s3 import S3Store  # boto3 only when an S3 store is used

        return S3Store(
            bucket=parsed.netloc,
            prefix=parsed.path.strip("/"),
            endpoint_url=endpoint_url,
            region=region,
            timeouts=timeouts,
        )
    raise errors.Invalid(f"unsupported store URL {url!r} (use file://PATH or s3://BUCKET/PREFIX)")


__all__ = [
    "Blob",
    "Claim",
    "LeaseLost",
    "Leases",
    "LocalStore",
    "Store",
    "StoreTimeouts",
    "check_reads",
    "errors",
    "open_store",
    "probe_conditional_writes",
]
