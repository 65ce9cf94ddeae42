"""Reading request bodies: size limits from Content-Length, JSON, multipart uploads."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TypeVar

import falcon
import orjson
from pydantic import BaseModel

from store import errors

M = TypeVar("M", bound=BaseModel)


# Bodies up to this size are read and dropped before a 413, so the client,
# still sending, gets the answer instead of a reset connection.
_DRAIN_LIMIT = 16 * 1024 * 1024
_METADATA_LIMIT = 1024 * 1024
_MISSING = object()  # no metadata part yet (a part holding JSON null is present)


def _size(n: int) -> str:
    """`6 MB (6,291,456 bytes)`: the limits are whole KB or MB, as the docs name them."""
    for unit, name in ((1024 * 1024, "MB"), (1024, "KB")):
        if n >= unit and n % unit == 0:
            return f"{n // unit} {name} ({n:,} bytes)"
    return f"{n:,} bytes"


def _too_large(what: str, limit: int, length: int | None, hint: str) -> errors.TooLarge:
    # NOTE: it said "the request body is 307213 bytes; the limit is 262144": not which
    # limit (an async event's, not an invoke's 6 MB) nor what to do instead.
    size = f"{length:,} bytes" if length is not None else "larger"
    return errors.TooLarge(f"{what} may be at most {_size(limit)}; this one is {size}{hint}")


def _check_length(
    req: falcon.Request,
    limit: int,
    length: int | None = None,
    what: str = "the request body",
    hint: str = "",
) -> None:
    """413 when the declared length (`length`, else Content-Length) is over `limit`."""
    if length is None:
        length = req.content_length
    if length is not None and length > limit:
        if length <= _DRAIN_LIMIT:
            while req.bounded_stream.read(1 << 16):
                pass
        raise _too_large(what, limit, length, hint)


def read_bytes(
    req: falcon.Request, limit: int, *, what: str = "the request body", hint: str = ""
) -> bytes:
    """The raw body, refused with 413 before reading when it is declared too large; the
    message names `what` is limited and, in `hint`, what to do instead."""
    length = req.content_length  # PERF: falcon parses the header again on every access
    _check_length(req, limit, length, what, hint)
    # NOTE: a chunked body has no Content-Length; the server's input stream
    # ends at its last chunk, so read it directly, still bounded.
    stream = req.bounded_stream if length is not None else req.stream
    data = stream.read(limit + 1)
    if len(data) > limit:
        raise _too_large(what, limit, None, hint)
    return data


def parse_json(data: bytes, *, empty: object = None) -> object:
    if not data.strip():
        if empty is not None:
            return empty
        raise errors.BadRequest("the request body is empty; send a JSON object")
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise errors.BadRequest(f"malformed JSON: {exc}", code="invalid_json") from None


_KINDS = {list: "an array", str: "a string", int: "a number", float: "a number", bool: "a boolean"}


def json_object(value: object) -> dict:
    """`value` (parsed JSON) as the object a JSON-body route takes. Valid JSON of another
    shape (`[1, 2]`) is a 422 naming the body, as DESIGN splits it: malformed JSON 400,
    valid JSON that does not fit 422; every JSON-body route reads its object here (a
    multipart upload's `metadata` part has its own 422, field `metadata`)."""
    if not isinstance(value, dict):
        kind = "null" if value is None else _KINDS.get(type(value), type(value).__name__)
        raise errors.Invalid.field("body", f"must be a JSON object, not {kind}")
    return value


def require_json(req: falcon.Request) -> None:
    media = (req.content_type or "").split(";")[0].strip().lower()
    if media and media != "application/json":
        raise errors.UnsupportedMediaType(
            f"unsupported media type {media!r}; send application/json",
        )


def read_model(
    req: falcon.Request,
    model: type[M],
    limit: int,
    *,
    unless: tuple[int, bytes] | None = None,
    optional: bool = False,
) -> M:
    """A JSON object body as `model` (`optional`: an empty body is `{}`).
    `unless=(small, marker)`: a body over `small` bytes must contain `marker`,
    checked before parsing (so a source function's create cannot make the
    server parse a binary upload's worth of JSON)."""
    require_json(req)
    data = read_bytes(req, limit)
    if unless is not None and len(data) > unless[0] and unless[1] not in data:
        raise errors.TooLarge(
            f"the request body is {len(data)} bytes; the limit is {unless[0]} "
            f"unless it uploads a binary ({unless[1].decode()})"
        )
    body = json_object(parse_json(data, empty={} if optional else None))
    return model.model_validate(body)


def is_multipart(req: falcon.Request) -> bool:
    return (req.content_type or "").lower().startswith("multipart/form-data")


@contextlib.contextmanager
def multipart_upload(
    req: falcon.Request, model: type[M], file_limit: int, spool: Path
) -> Iterator[tuple[M, Path | None]]:
    """An `artifact` file part streamed to a temp file, plus a `metadata` JSON part."""
    if req.content_length is None:  # falcon's multipart reader needs the length
        raise falcon.HTTPLengthRequired(
            title="length_required", description="a multipart upload needs a Content-Length"
        )
    _check_length(req, file_limit + _METADATA_LIMIT)
    spool.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=spool, prefix="upload-")
    path, got_file, metadata = Path(name), False, _MISSING
    try:
        with os.fdopen(fd, "wb") as out:
            # NOTE(security): one limit for the whole body, however it is chunked or
            # split into parts (a per-part count let 64 parts of 50 MB spool to disk).
            total, limit = 0, file_limit + _METADATA_LIMIT
            for part in req.get_media():
                if part.name == "artifact" and not got_file:
                    got_file = True
                    while chunk := part.stream.read(1 << 20):
                        total += len(chunk)
                        if total > limit:
                            raise errors.TooLarge(f"the artifact is over {file_limit} bytes")
                        out.write(chunk)
                elif part.name == "metadata" and metadata is _MISSING:
                    data = part.stream.read(_METADATA_LIMIT + 1)
                    total += len(data)
                    if len(data) > _METADATA_LIMIT or total > limit:
                        raise errors.TooLarge(f"the metadata part is over {_METADATA_LIMIT} bytes")
                    metadata = parse_json(data)
                else:
                    raise errors.Invalid(
                        f"unexpected form part {part.name!r}; "
                        "send one 'artifact' and one 'metadata'"
                    )
        if metadata is _MISSING:
            raise errors.Invalid(
                "the metadata part is missing: send a 'metadata' part holding the "
                "function's settings as a JSON object",
                details=[{"field": "metadata", "message": "required"}],
            )
        if not isinstance(metadata, dict):
            raise errors.Invalid(
                "the metadata part must be a JSON object",
                details=[{"field": "metadata", "message": "must be a JSON object"}],
            )
        yield model.model_validate(metadata), (path if got_file else None)
    except falcon.MediaMalformedError as exc:
        raise errors.BadRequest(f"malformed multipart body: {exc.description}") from None
    finally:
        path.unlink(missing_ok=True)
