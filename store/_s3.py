"""The S3 backend (AWS, MinIO, SeaweedFS, …) over boto3.

Objects live under `bucket/prefix/`. Conditional writes are S3's own:
`create=True` is `If-None-Match: *` and `if_match` is `If-Match`, so
compare-and-swap holds across every process that shares the bucket.
Etags are returned without their quotes, in the same form by every method.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, NoReturn

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    HTTPClientError,
    NoCredentialsError,
    ReadTimeoutError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError

from . import errors
from ._base import Blob, Store, StoreTimeouts, check_key

log = logging.getLogger(__name__)

_CHUNK = 1 << 20
# After a call timed out, the calls of the next few seconds get one quick try each.
_HUNG_WINDOW_SEC = 2.0
_CONFLICT_CODES = {"PreconditionFailed", "ConditionalRequestConflict"}
_MISSING_CODES = {"NoSuchKey", "NoSuchBucket", "NotFound", "404"}
# What a server without DeleteObjects (or without the checksum it sends) answers.
_NO_BATCH_CODES = {"NotImplemented", "MethodNotAllowed", "MissingContentMD5", "InvalidRequest"}


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _status(exc: ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))


def _unquote(etag: str) -> str:
    return etag.strip('"')


def _quote(etag: str) -> str:
    return f'"{_unquote(etag)}"'


class S3Store(Store):
    page_size = 1000  # keys per LIST request (S3's maximum)
    delete_batch = 1000  # keys per DeleteObjects request (S3's maximum)

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        endpoint_url: str | None = None,
        region: str | None = None,
        timeouts: StoreTimeouts | None = None,
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.endpoint_url = endpoint_url
        self.timeouts = timeouts = timeouts or StoreTimeouts()
        # A session per store: boto3's default session is not thread-safe to create clients.
        session = boto3.session.Session()

        def client(connect_sec: float, read_sec: float, attempts: int, pool: int):
            config = Config(
                # NOTE: boto3 ≥ 1.36 adds checksum headers some S3-compatible servers reject.
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
                s3={"addressing_style": "path"},
                # NOTE: bounded so a hung store (it accepts connections, never answers)
                # costs a call about attempts × read_sec, not minutes. total_max_attempts
                # counts the first try; boto3's `max_attempts` counts only the retries.
                retries={"total_max_attempts": attempts, "mode": "standard"},
                connect_timeout=connect_sec,
                read_timeout=read_sec,
                max_pool_connections=pool,
            )
            return session.client(
                "s3", endpoint_url=endpoint_url, region_name=region, config=config
            )

        self._s3 = client(timeouts.connect_sec, timeouts.read_sec, timeouts.attempts, 32)
        # The hot path's revalidations and /ready: one short try, their callers have a
        # fallback (a cached record, a 503) better than waiting on a store that hangs.
        quick = min(timeouts.quick_sec, timeouts.connect_sec)
        self._s3_quick = client(quick, timeouts.quick_sec, 1, 16)
        self._hung_until = 0.0  # monotonic; see _client
        self._batch_deletes = True  # False once the server refused DeleteObjects

    def _client(self) -> Any:
        """The full client, or the quick one while the store seems hung: within
        `_HUNG_WINDOW_SEC` of a call that timed out, so that a hung store costs the
        callers after the first one short try each (a 503 in seconds), not attempts ×
        read timeout. A quick call that times out meanwhile keeps the window open."""
        return self._s3_quick if time.monotonic() < self._hung_until else self._s3

    def __repr__(self) -> str:
        where = f" at {self.endpoint_url}" if self.endpoint_url else ""
        return f"S3Store('s3://{self.bucket}/{self.prefix}'{where})"

    # -- keys ---------------------------------------------------------------

    def _key(self, key: str) -> str:
        check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def _unkey(self, s3_key: str) -> str:
        return s3_key[len(self.prefix) + 1 :] if self.prefix else s3_key

    # -- errors -------------------------------------------------------------

    def _raise(self, exc: Exception, key: str, *, conditional: bool = False) -> NoReturn:
        """Translate a boto3 failure into the store's error hierarchy."""
        where = f"{key} in {self!r}"
        if isinstance(exc, ClientError):
            code, status = _code(exc), _status(exc)
            if code in _CONFLICT_CODES or status == 412:
                raise errors.Conflict(f"{key} changed or already exists") from exc
            if code in _MISSING_CODES or status == 404:
                # If-Match on a missing key: AWS and moto say 404, SeaweedFS 412.
                if conditional:
                    raise errors.Conflict(f"{key} does not exist") from exc
                raise errors.NotFound(f"{key} not found") from exc
            # Anything else (403, 5xx, SlowDown, a server's own quirk) means the
            # store cannot serve us right now: callers see 503, not a 500.
            raise errors.Unavailable(f"S3 refused {where}: {code} {status}") from exc
        if isinstance(exc, BotoConnectionError | HTTPClientError | NoCredentialsError):
            raise errors.Unavailable(f"S3 unreachable for {where}: {exc}") from exc
        raise errors.Unavailable(f"S3 failed for {where}: {exc}") from exc

    @contextlib.contextmanager
    def _translated(
        self, key: str, *, conditional: bool = False, quick: bool = False
    ) -> Iterator[None]:
        """`quick`: a call that asked for the quick client; its timeout alone (a slow
        answer on a busy store) does not make the store look hung."""
        try:
            yield
        except (ClientError, BotoCoreError) as exc:
            timed_out = isinstance(exc, ReadTimeoutError | ConnectTimeoutError)
            if timed_out and (not quick or time.monotonic() < self._hung_until):
                self._hung_until = time.monotonic() + _HUNG_WINDOW_SEC
            self._raise(exc, key, conditional=conditional)

    def _ensure_bucket(self, *, quick: bool = False) -> None:
        with self._translated(self.bucket, quick=quick):
            try:
                (self._s3_quick if quick else self._client()).head_bucket(Bucket=self.bucket)
                return
            except ClientError as exc:
                if _status(exc) != 404:
                    raise
            kwargs: dict[str, Any] = {"Bucket": self.bucket}
            region = self._client().meta.region_name
            if region and region not in ("us-east-1", "aws-global"):
                kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
            try:
                self._client().create_bucket(**kwargs)
            except ClientError as exc:
                if _code(exc) not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                    raise

    def _write(self, key: str, conditional: bool, **kwargs: Any) -> str:
        """put_object, creating the bucket on the first write to a new one."""
        s3_key = self._key(key)
        with self._translated(key, conditional=conditional):
            try:
                response = self._client().put_object(Bucket=self.bucket, Key=s3_key, **kwargs)
            except ClientError as exc:
                if _code(exc) != "NoSuchBucket":
                    raise
                self._ensure_bucket()
                if hasattr(kwargs["Body"], "seek"):
                    kwargs["Body"].seek(0)
                response = self._client().put_object(Bucket=self.bucket, Key=s3_key, **kwargs)
        return _unquote(response["ETag"])

    # -- Store --------------------------------------------------------------

    def get(self, key: str, *, quick: bool = False) -> Blob:
        s3 = self._s3_quick if quick else self._client()
        with self._translated(key, quick=quick):
            response = s3.get_object(Bucket=self.bucket, Key=self._key(key))
            with contextlib.closing(response["Body"]) as body:
                data = body.read()
        return Blob(data, _unquote(response["ETag"]))

    def head(self, key: str, *, quick: bool = False) -> str | None:
        s3 = self._s3_quick if quick else self._client()
        try:
            with self._translated(key, quick=quick):
                response = s3.head_object(Bucket=self.bucket, Key=self._key(key))
        except errors.NotFound:
            return None
        return _unquote(response["ETag"])

    def put(
        self, key: str, data: bytes, *, create: bool = False, if_match: str | None = None
    ) -> str:
        # NOTE: a write whose response is lost is retried by boto3; its condition
        # then fails against our own write and the caller sees a Conflict.
        kwargs: dict[str, Any] = {"Body": data}
        if create:
            kwargs["IfNoneMatch"] = "*"
        if if_match is not None:
            kwargs["IfMatch"] = _quote(if_match)
        return self._write(key, create or if_match is not None, **kwargs)

    def delete(self, key: str, *, if_match: str | None = None) -> None:
        s3_key = self._key(key)
        if if_match is None:
            with contextlib.suppress(errors.NotFound), self._translated(key):
                self._client().delete_object(Bucket=self.bucket, Key=s3_key)  # NotFound: no bucket
            return
        # NOTE: SeaweedFS, moto and AWS honour If-Match on DeleteObject, but a
        # server that ignores it would delete unconditionally. Comparing first
        # makes such a server wrong only within the race window between this
        # head and the delete; servers that honour If-Match are exact.
        if self.head(key) != _unquote(if_match):
            raise errors.Conflict(f"{key} changed since it was read")
        with self._translated(key, conditional=True):
            self._client().delete_object(Bucket=self.bucket, Key=s3_key, IfMatch=_quote(if_match))

    def list(self, prefix: str) -> Iterator[str]:
        full = f"{self.prefix}/{prefix}" if self.prefix else prefix
        keys: list[str] = []
        with self._translated(prefix):
            pages = (
                self._client()
                .get_paginator("list_objects_v2")
                .paginate(
                    Bucket=self.bucket, Prefix=full, PaginationConfig={"PageSize": self.page_size}
                )
            )
            try:
                for page in pages:
                    keys.extend(self._unkey(item["Key"]) for item in page.get("Contents", ()))
            except ClientError as exc:
                if _code(exc) != "NoSuchBucket":  # no bucket yet: an empty store
                    raise
        # S3 lists in UTF-8 byte order already; sorting guards servers that don't.
        return iter(sorted(keys))

    def delete_keys(self, keys: Iterable[str]) -> None:
        batch: list[str] = []
        for key in keys:
            batch.append(key)
            if len(batch) == self.delete_batch:
                self._delete_batch(batch)
                batch = []
        if batch:
            self._delete_batch(batch)

    def _delete_batch(self, keys: list[str]) -> None:
        """One DeleteObjects request; the keys it reports it could not delete are tried
        once more one by one (raising if the store still refuses). On a server without
        DeleteObjects every key is deleted on its own, from then on."""
        failed = keys
        if self._batch_deletes:
            objects = [{"Key": self._key(key)} for key in keys]
            with self._translated(keys[0]):
                try:
                    response = self._client().delete_objects(
                        Bucket=self.bucket, Delete={"Objects": objects, "Quiet": True}
                    )
                    failed = [self._unkey(e["Key"]) for e in response.get("Errors", ())
                              if e.get("Code") != "NoSuchKey"]  # fmt: skip
                except ClientError as exc:
                    if _code(exc) == "NoSuchBucket":
                        return  # no bucket yet: nothing to delete
                    if _code(exc) not in _NO_BATCH_CODES and _status(exc) not in (405, 501):
                        raise
                    log.warning("%r refused DeleteObjects (%s): deleting key by key",
                                self, _code(exc))  # fmt: skip
                    self._batch_deletes = False
        for key in failed:
            self.delete(key)

    def put_file(self, key: str, path: Path) -> str:
        # One streamed PUT (up to 5 GB): unlike upload_file's multipart uploads
        # it returns the etag head() and get() will report.
        with open(path, "rb") as f:
            return self._write(key, False, Body=f)

    def get_file(self, key: str, path: Path) -> None:
        path = Path(path)
        with self._translated(key):
            response = self._client().get_object(Bucket=self.bucket, Key=self._key(key))
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
            try:
                with os.fdopen(fd, "wb") as f, contextlib.closing(response["Body"]) as body:
                    for chunk in body.iter_chunks(_CHUNK):
                        f.write(chunk)
                os.replace(tmp, path)
            except BaseException:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
                raise

    def ping(self) -> None:
        """Check the bucket answers (quickly), creating it if it does not exist yet."""
        self._ensure_bucket(quick=True)

    def close(self) -> None:
        self._s3.close()
        self._s3_quick.close()
