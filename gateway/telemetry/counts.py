"""What every tally of invocation outcomes counts: the platform-wide totals
(`stats.Tally`) and the windowed stats per version (`windows.Window`) alike."""

from __future__ import annotations

from dataclasses import dataclass

from .recorder import THROTTLED, InvocationOutcome


@dataclass(slots=True)
class OutcomeCounts:
    """Outcomes by status, cold starts and durations; merged by addition. A subclass
    keeps the number of calls that ran under its own (stored) name."""

    succeeded: int = 0
    failed: int = 0  # function errors, memory kills, results too large, …
    timed_out: int = 0
    throttled: int = 0  # refused (429) before running: not a call that ran, as Lambda counts
    cold_starts: int = 0
    duration_sum_ms: float = 0.0
    duration_min_ms: float | None = None
    duration_max_ms: float | None = None

    def count(self, o: InvocationOutcome) -> bool:
        """Count `o`; False when it was throttled (it never ran)."""
        if o.status == THROTTLED:
            self.throttled += 1
            return False
        if o.status == "succeeded":
            self.succeeded += 1
        elif o.status == "timed_out":
            self.timed_out += 1
        else:
            self.failed += 1
        if o.cold_start:
            self.cold_starts += 1
        ms = o.duration_ms
        self.duration_sum_ms += ms
        if self.duration_min_ms is None or ms < self.duration_min_ms:
            self.duration_min_ms = ms
        if self.duration_max_ms is None or ms > self.duration_max_ms:
            self.duration_max_ms = ms
        return True

    def by_status(self) -> dict[str, int]:
        """The counts every stats view shows, under these names."""
        return {"succeeded": self.succeeded, "failed": self.failed, "timed_out": self.timed_out,
                "throttled": self.throttled, "cold_starts": self.cold_starts}  # fmt: skip

    def avg_ms(self, ran: int) -> float | None:
        return round(self.duration_sum_ms / ran, 3) if ran else None

    def merge_counts(self, other: OutcomeCounts) -> None:
        self.succeeded += other.succeeded
        self.failed += other.failed
        self.timed_out += other.timed_out
        self.throttled += other.throttled
        self.cold_starts += other.cold_starts
        self.duration_sum_ms += other.duration_sum_ms
        self.duration_min_ms = _either(min, self.duration_min_ms, other.duration_min_ms)
        self.duration_max_ms = _either(max, self.duration_max_ms, other.duration_max_ms)


def _either(pick, ours: float | None, theirs: float | None) -> float | None:
    if ours is None or theirs is None:
        return theirs if ours is None else ours
    return pick(ours, theirs)


def rate(part: int, whole: int) -> float | None:
    """`part / whole` as a 0–1 fraction; None before anything ran."""
    return round(part / whole, 6) if whole else None
