"""What `/api/v1/stats` and `/api/v1/quota` answer: invocation figures, limits and usage."""

from __future__ import annotations

from collections.abc import Callable

from store.functions import FunctionRepo
from store.records import now

from ..limits import BINARY_LIMIT, EVENT_LIMIT, SOURCE_LIMIT, memory_floors
from ..schemas import (
    CodeSizeLimits,
    ConcurrencyUsage,
    DurationSummary,
    FunctionCounts,
    InvocationSummary,
    MemoryLimits,
    QuotaLimits,
    QuotaUsage,
    QuotaView,
    StatsView,
    TimeoutLimits,
)
from ..settings import Settings
from .counts import rate
from .stats import StatsBook, Tally


def summary(tally: Tally) -> InvocationSummary:
    total = tally.total
    return InvocationSummary(
        total_invocations=total,
        success_rate=rate(tally.succeeded, total),
        **tally.by_status(),
        duration_ms=DurationSummary(
            min=tally.duration_min_ms, avg=tally.avg_ms(total), max=tally.duration_max_ms
        ),
    )


class StatsService:
    def __init__(self, repo: FunctionRepo, book: StatsBook, flush: Callable[[], None]) -> None:
        self.repo = repo
        self.book = book
        self.flush = flush

    def stats(self) -> StatsView:
        # NOTE: this worker's outcomes are flushed first; other workers' are at
        # most one flush interval (LOG_FLUSH_SEC) old.
        self.flush()
        totals = self.book.totals()
        by_status: dict[str, int] = {}
        by_runtime: dict[str, int] = {}
        count = 0
        for fn in self.repo.list_functions():
            count += 1
            by_status[fn.status] = by_status.get(fn.status, 0) + 1
            by_runtime[fn.runtime] = by_runtime.get(fn.runtime, 0) + 1
        return StatsView(
            **summary(totals.all).model_dump(),
            by_runtime={name: summary(t) for name, t in sorted(totals.by_runtime.items())},
            by_error_type=totals.by_error_type,
            by_function_error_type=totals.by_function_error_type,
            by_trigger=totals.by_trigger,
            functions=FunctionCounts(total=count, by_status=by_status, by_runtime=by_runtime),
            generated_at=now(),
        )


class QuotaService:
    def __init__(
        self,
        repo: FunctionRepo,
        settings: Settings,
        running_here: Callable[[], int],
        running_on_server: Callable[[], int],
    ) -> None:
        self.repo = repo
        self.settings = settings
        self.running_here = running_here
        self.running_on_server = running_on_server

    def limits(self) -> QuotaLimits:
        s = self.settings
        return QuotaLimits(
            max_functions=s.max_functions,
            memory_mb=MemoryLimits(
                min=s.min_memory_mb,
                max=s.max_memory_mb,
                default=s.default_memory_mb,
                min_by_runtime=memory_floors(s),
            ),
            timeout_sec=TimeoutLimits(default=s.default_timeout_sec, max=s.max_timeout_sec),
            code_size_bytes=CodeSizeLimits(source=SOURCE_LIMIT, binary=BINARY_LIMIT),
            event_size_bytes=EVENT_LIMIT,
            max_concurrent_per_worker=s.max_concurrent,
            invoke_queue_per_worker=s.invoke_queue_size,
            workers=s.workers,
            max_concurrent=s.max_concurrent * s.workers,
            log_retention_hours=s.log_retention_hours,
        )

    def quota(self) -> QuotaView:
        functions = 0
        stored = 0
        for fn in self.repo.list_functions():
            functions += 1
            stored += fn.code_size
        here = self.running_here()
        return QuotaView(
            limits=self.limits(),
            usage=QuotaUsage(
                functions=functions,
                functions_remaining=max(self.settings.max_functions - functions, 0),
                stored_bytes=stored,
                concurrent_invocations=ConcurrencyUsage(
                    worker=here, server=max(self.running_on_server(), here)
                ),
            ),
        )
