"""Request rate limits per API key and per webhook: a moving window per caller.

Counted per worker, in memory (the `limits` package): a limit of N/second is
N × WORKERS × replicas for the whole platform. Off unless configured
(`RATE_LIMIT_PER_KEY`, `RATE_LIMIT_PER_WEBHOOK`), so benchmarks are unaffected.
A caller over its limit gets 429 with `Retry-After`.
"""

from __future__ import annotations

import math
import time

import falcon
import limits
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from store import errors


def parse_limits(text: str | None, setting: str) -> list[limits.RateLimitItem]:
    if not text:
        return []
    try:
        return limits.parse_many(text)
    except ValueError as exc:
        raise errors.Invalid(f"{setting}: {exc} (e.g. '100/second;2000/minute')") from None


class RateLimit:
    """Middleware after the key check: the caller is the key (or the webhook's key)."""

    def __init__(self, per_key: str | None, per_webhook: str | None) -> None:
        self.per_key = parse_limits(per_key, "RATE_LIMIT_PER_KEY")
        self.per_webhook = parse_limits(per_webhook, "RATE_LIMIT_PER_WEBHOOK")
        self._limiter = MovingWindowRateLimiter(MemoryStorage())

    def process_resource(self, req: falcon.Request, resp, resource, params) -> None:
        if resource is None:
            return
        if getattr(resource, "public", False):
            if "key" not in params or not self.per_webhook:
                return  # health, metrics, OpenAPI: not limited
            items, caller = self.per_webhook, "webhook:" + params["key"]
        else:
            principal = req.context.get("principal")
            if principal is None or not self.per_key:
                return
            items, caller = self.per_key, "key:" + (principal.key_id or "admin")
        for item in items:
            if not self._limiter.hit(item, caller):
                reset_at, _ = self._limiter.get_window_stats(item, caller)
                raise errors.LimitExceeded(
                    f"rate limit exceeded ({item}); retry later",
                    retry_after=max(1, math.ceil(reset_at - time.time())),
                )
