"""`nimbus init NAME --runtime R`: a folder with a working function, ready for `deploy`."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click

from ..session import Session, api_options, pass_session
from ..templates import TEMPLATES

# NOTE: init works without a server, so it cannot ask the server's registry; these are the
# registry's aliases of the runtimes it has templates for (tests/cli/test_offline_copies.py
# fails when they drift from compiler/registry.py). `deploy` asks the server as always.
ALIASES = {"python3.11": "python", "python3": "python", "nodejs": "javascript",
           "node20": "javascript", "node": "javascript", "js": "javascript"}  # fmt: skip
# The server's rule for names (a DNS label), so the folder deploys under the name given.
FUNCTION_NAME = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")


@click.command()
@click.argument("name")
@click.option("--runtime", "-r", required=True, metavar="RUNTIME",
              help=f"{', '.join(TEMPLATES)} (or an alias: python3.11, nodejs, js)")  # fmt: skip
@click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path),
              help="where to write it (default: ./NAME)")  # fmt: skip
@api_options
@pass_session
def init(session: Session, name: str, runtime: str, directory: Path | None) -> None:
    """Write a hello-world function to ./NAME; then `nimbus deploy NAME`.

    \b
      nimbus init hello --runtime python
      nimbus deploy hello && nimbus invoke hello -d '{"name": "Ada"}'
    """
    if not FUNCTION_NAME.fullmatch(name):
        fixed = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")[:63].strip("-")
        hint = f" (e.g. {fixed})" if fixed else ""
        raise click.BadParameter(f"{name!r} cannot name a function: 1-63 of a-z, 0-9 and "
                                 f"'-', not at the ends{hint}", param_hint="NAME")  # fmt: skip
    chosen = ALIASES.get(runtime.lower(), runtime.lower())
    if chosen not in TEMPLATES:
        raise click.BadParameter(f"{runtime!r}: one of {', '.join(TEMPLATES)}",
                                 param_hint="--runtime")  # fmt: skip
    folder = directory or Path(name)
    if folder.exists() and any(folder.iterdir()):
        raise click.UsageError(f"{folder} exists and is not empty: pick another NAME or --dir")
    folder.mkdir(parents=True, exist_ok=True)
    for file, text in TEMPLATES[chosen].items():
        (folder / file).write_text(text)
    made = {"path": str(folder), "runtime": chosen, "files": sorted(TEMPLATES[chosen])}
    target = name if directory is None else f"{name} {shlex.quote(str(folder))}"

    def render(console) -> None:
        console.print(f"wrote {', '.join(made['files'])} to {folder}/ ({chosen})")
        event = '{"name": "Ada"}'
        steps = f"  nimbus deploy {target}\n  nimbus invoke {name} -d '{event}'"
        console.print(steps, markup=False)

    session.output.emit(made, render)
