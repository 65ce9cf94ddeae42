"""The platform's one error hierarchy.

It lives in `store` because every other package may import `store` and
nothing below it exists; the gateway maps each class to an HTTP status in
one place (a code given to an instance never changes its status).
"""

from __future__ import annotations

from typing import Any


class NimbusError(Exception):
    """Base class: a user-facing failure with a stable error code."""

    code = "internal"

    def __init__(self, message: str, *, code: str | None = None, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.details = details

    def __init_subclass__(cls, *, code: str | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if code is not None:
            cls.code = code  # `class NotFound(NimbusError, code="not_found")`


class BadRequest(NimbusError, code="bad_request"):
    """The request cannot be read at all (malformed JSON, a header that is not an object)."""


class UnsupportedMediaType(NimbusError, code="unsupported_media_type"): ...


class MemoryLimitExceeded(NimbusError, code="memory_limit_exceeded"):
    """The function ran out of its memory (the function's failure, not the platform's)."""


class ResultTooLarge(NimbusError, code="result_too_large"): ...


class NotFound(NimbusError, code="not_found"): ...


class Conflict(NimbusError, code="conflict"):
    """A precondition failed: the object changed or already exists."""


class Invalid(NimbusError, code="validation_error"):
    @classmethod
    def field(cls, name: str, message: str) -> Invalid:
        """A 422 naming one field: the message reads `name: message`, and `details`
        holds `{field, message}` (what clients and the console show next to the field)."""
        return cls(f"{name}: {message}", details=[{"field": name, "message": message}])


class TooLarge(NimbusError, code="too_large"): ...


class RecordUnreadable(NimbusError, code="record_unreadable"):
    """A record in the store does not read back as its model (written by another Nimbus
    version, or changed outside Nimbus): the server's fault, never the caller's."""


class LimitExceeded(NimbusError, code="too_many_requests"):
    """A rate or capacity limit; callers may retry after `retry_after` seconds."""

    def __init__(self, message: str, *, retry_after: int = 1, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class Timeout(NimbusError, code="timeout"): ...


class Unavailable(NimbusError, code="unavailable"):
    """The platform cannot serve this now (its store or engine is away); callers may retry
    after `retry_after` seconds."""

    def __init__(self, message: str, *, retry_after: int = 2, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after
