"""How long a queue poller waits before it lists its queue in the store again.

PERF(replicas): each look is a LIST request, the dearest kind on S3. Polling
the async queue every 0.5 s and the build queue every 1 s made 3 of an idle
worker's 5 LISTs a second (bench `replicas`): ~8 million a month per worker
for queues that were empty. A worker that accepts work wakes its own poller
at once, so backing off while a queue stays empty only delays what other
replicas' workers notice — a takeover after a crash, help with a burst
accepted elsewhere — by at most the ceiling.
"""

from __future__ import annotations


class IdlePolling:
    """`base_sec` between looks while the queue holds anything; after each look that
    found it empty, twice the last wait, up to `max_sec`."""

    def __init__(self, base_sec: float, max_sec: float) -> None:
        self.base_sec = base_sec
        self.max_sec = max(base_sec, max_sec)
        self._wait = base_sec

    def after(self, *, empty: bool) -> float:
        """The wait after a look that found the queue `empty` (or not)."""
        self._wait = min(self.max_sec, self._wait * 2) if empty else self.base_sec
        return self._wait
