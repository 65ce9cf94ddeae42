"""`python -m bench [--quick] [--only KEY ...] [--profile]`: run, then write the report.

Exit status: 0 when every comparison ran (a missed target is a finding, not a
failure), 1 when one could not run.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import signal
import sys
import tempfile
import time
import traceback
from pathlib import Path

from . import profile, report
from .comparisons import COMPARISONS, select
from .context import BenchContext
from .report import Outcome

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short runs, fewer repetitions")
    parser.add_argument("--only", nargs="+", metavar="KEY", help="run only these comparisons")
    parser.add_argument("--list", action="store_true", help="list the comparisons and exit")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="only profile the workers under load (py-spy) into bench/results/",
    )
    parser.add_argument(
        "--no-profile",
        action="store_true",
        help="do not profile automatically when a full run misses the throughput target",
    )
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    return parser.parse_args(argv)


def run_comparisons(ctx: BenchContext, chosen) -> list[Outcome]:
    outcomes = []
    for i, comparison in enumerate(chosen):
        log(f"{comparison.key}: {comparison.title}")
        outcome = Outcome(comparison)
        t0 = time.monotonic()
        try:
            outcome.results = comparison.run(ctx)
        except Exception:
            outcome.error = traceback.format_exc(limit=8).strip()
            log(f"{comparison.key} failed:\n{outcome.error}")
        outcome.seconds = time.monotonic() - t0
        for r in outcome.results:
            log(f"  {r.title}: ratio {r.ratio:.3g}; {r.verdict}")
        outcomes.append(outcome)
        if not any(c.uses_servers for c in chosen[i + 1 :]):
            ctx.stop_servers()  # idle servers would only add noise to what follows
    return outcomes


def wants_profile(outcomes: list[Outcome]) -> bool:
    return any(
        o.comparison.key == profile.PROFILED_COMPARISON and r.target_met is False
        for o in outcomes
        for r in o.results
    )


def try_profile(ctx: BenchContext) -> dict[str, str]:
    log(f"profiling the workers under load ({ctx.params.profile_s:g} s per server)")
    try:
        found = profile.run(ctx)
    except profile.ProfilerMissing as exc:
        log(f"no profile: {exc}")
        return {}
    except Exception:
        log(f"profiling failed:\n{traceback.format_exc(limit=5)}")
        return {}
    finally:
        ctx.stop_servers()
    for path in found.values():
        log(f"profile written: {path}")
    return found


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.list:
        for c in COMPARISONS:
            print(f"{c.key:20} {c.title}")
        return 0
    started = dt.datetime.now(dt.UTC)
    machine = report.machine()
    with tempfile.TemporaryDirectory(prefix="nimbus-bench-") as tmp:
        ctx = BenchContext(quick=args.quick, workdir=Path(tmp), results_dir=args.results_dir)
        try:
            if args.profile:
                return 0 if try_profile(ctx) else 1
            outcomes = run_comparisons(ctx, select(args.only))
            if not args.quick and not args.no_profile and wants_profile(outcomes):
                ctx.profiles.update(try_profile(ctx))
        finally:
            ctx.close()
    data = report.build(
        outcomes,
        quick=args.quick,
        params=dataclasses.asdict(ctx.params),
        started=started,
        machine_info=machine,
        profiles=ctx.profiles,
    )
    json_path, md_path = report.write(data, args.results_dir)
    log(f"report: {md_path} and {json_path.name}")
    return 1 if any(o.error for o in outcomes) else 0


def _exit_on_sigterm() -> None:
    """SIGTERM unwinds like Ctrl-C: every server the run started (each in its own
    session, out of reach of a signal to ours) is stopped on the way out."""
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))


if __name__ == "__main__":
    _exit_on_sigterm()
    sys.exit(main())
