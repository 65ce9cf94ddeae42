"""`nimbus serve`: the platform itself (the server extra), imported only here."""

from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.option("--host", help="address to bind (HOST)")
@click.option("--port", type=int, help="port to bind (PORT)")
@click.option("--workers", type=int, help="gunicorn workers (WORKERS)")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path),
              help="the local store, the generated API key, caches (DATA_DIR)")  # fmt: skip
def serve(host: str | None, port: int | None, workers: int | None, data_dir: Path | None) -> None:
    """Run the platform (needs the server extra: pip install 'nimbus[server]')."""
    try:
        from gateway.serve import serve as run
        from gateway.settings import SettingsError, load_settings
        from store.errors import NimbusError
    except ImportError as exc:  # a client-only install
        raise click.ClickException(
            f"the server is not installed ({exc}); install nimbus[server]"
        ) from None
    given = (("host", host), ("port", port), ("workers", workers), ("data_dir", data_dir))
    overrides = {k: v for k, v in given if v}
    try:
        settings = load_settings(**overrides)
    except SettingsError as exc:
        raise BadSettings(str(exc)) from None
    try:
        run(settings)
    except SettingsError as exc:
        raise BadSettings(str(exc)) from None
    except NimbusError as exc:
        raise click.ClickException(exc.message) from None


class BadSettings(click.ClickException):
    exit_code = 2  # as a refused store: an orchestrator's log shows why, nothing to retry
