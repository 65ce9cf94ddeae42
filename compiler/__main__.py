"""`python -m compiler install-toolchains [RUNTIME ...] [--dir DIR]`.

Installs and warms the toolchain of every compiled runtime (or the ones
named), with progress on stdout; `make install` runs it. Idempotent: a
second run with nothing to do takes well under a second.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from . import BuildConfig, BuildFailed, builder_for, runtimes_with_toolchains


class ConsoleLog:
    """The build log's interface, printed."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self._start = time.monotonic()

    def write(self, line: str) -> None:
        stamp = time.monotonic() - self._start
        for part in line.rstrip("\n").split("\n"):
            print(f"{self.prefix} [{stamp:6.1f}s] {part}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m compiler")
    commands = parser.add_subparsers(dest="command", required=True)
    install = commands.add_parser("install-toolchains", help="install and warm toolchains")
    install.add_argument("runtimes", nargs="*", help="default: every compiled runtime")
    install.add_argument("--dir", type=Path, default=Path(".cache/toolchains"))
    args = parser.parse_args(argv)

    config = BuildConfig(toolchains_dir=args.dir)
    failed = []
    for runtime in args.runtimes or runtimes_with_toolchains():
        started = time.monotonic()
        log = ConsoleLog(f"[{runtime}]")
        try:
            builder_for(runtime, config).prepare(log)
        except (BuildFailed, AttributeError) as exc:
            log.write(f"error: {getattr(exc, 'message', exc)}")
            failed.append(runtime)
            continue
        log.write(f"ready ({time.monotonic() - started:.1f}s)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
