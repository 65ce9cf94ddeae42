"""What a comparison measures: two sides, their repetitions, the ratio and a target."""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .context import BenchContext


@dataclass
class Side:
    """One side of a comparison: one sample per repetition."""

    label: str
    samples: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def spread_pct(self) -> float:
        """(max - min) / median, in percent: how much the repetitions disagreed."""
        m = self.median
        return 100 * (max(self.samples) - min(self.samples)) / m if m else 0.0

    def as_dict(self) -> dict:
        return {
            "label": self.label,
            "samples": [round(s, 6) for s in self.samples],
            "median": round(self.median, 6),
            "min": round(min(self.samples), 6),
            "max": round(max(self.samples), 6),
            "spread_pct": round(self.spread_pct, 1),
        }


@dataclass(frozen=True)
class Target:
    """`ratio >= 0.70`, `ratio <= 2`, or a bound on Nimbus's own median (`on="a"`)."""

    op: str  # ">=" or "<="
    value: float
    on: str = "ratio"  # "ratio" or "a" (the Nimbus side's median, in the result's unit)

    def met(self, measured: float) -> bool:
        return measured >= self.value if self.op == ">=" else measured <= self.value

    def describe(self, unit: str) -> str:
        op = "≥" if self.op == ">=" else "≤"
        return f"ratio {op} {self.value:g}" if self.on == "ratio" else f"{op} {self.value:g} {unit}"


@dataclass
class Result:
    """One line of the report: Nimbus (`a`) against a reference (`b`), side by side."""

    key: str
    title: str
    unit: str
    higher_is_better: bool
    a: Side
    b: Side
    target: Target | None = None
    notes: list[str] = field(default_factory=list)
    details: dict = field(default_factory=dict)

    @property
    def ratio(self) -> float:
        """Nimbus / reference, from the medians."""
        return self.a.median / self.b.median if self.b.median else float("inf")

    @property
    def paired_ratios(self) -> list[float]:
        """Per-repetition ratios when the two sides ran in pairs."""
        if len(self.a.samples) != len(self.b.samples):
            return []
        return [a / b for a, b in zip(self.a.samples, self.b.samples, strict=True) if b]

    @property
    def target_met(self) -> bool | None:
        if self.target is None:
            return None
        measured = self.ratio if self.target.on == "ratio" else self.a.median
        return self.target.met(measured)

    @property
    def verdict(self) -> str:
        """Said plainly, e.g. `target ratio ≥ 0.7: MISSED (0.55)`."""
        if self.target is None:
            return "no target (context)"
        measured = self.ratio if self.target.on == "ratio" else self.a.median
        word = "MET" if self.target_met else "MISSED"
        return f"target {self.target.describe(self.unit)}: {word} ({measured:.3g})"

    def as_dict(self) -> dict:
        ratios = self.paired_ratios
        return {
            "key": self.key,
            "title": self.title,
            "unit": self.unit,
            "higher_is_better": self.higher_is_better,
            "a": self.a.as_dict(),
            "b": self.b.as_dict(),
            "ratio": round(self.ratio, 4),
            "ratio_means": f"{self.a.label} / {self.b.label}",
            "paired_ratios": [round(r, 4) for r in ratios],
            "paired_ratio_median": round(statistics.median(ratios), 4) if ratios else None,
            "target": None
            if self.target is None
            else {"op": self.target.op, "value": self.target.value, "on": self.target.on},
            "target_met": self.target_met,
            "verdict": self.verdict,
            "notes": self.notes,
            "details": self.details,
        }


@dataclass(frozen=True)
class Comparison:
    """A registered comparison: `run(ctx)` measures both sides and returns its results."""

    key: str
    title: str
    run: Callable[[BenchContext], list[Result]]
    uses_servers: bool = False  # needs ctx.baseline() / ctx.nimbus()
