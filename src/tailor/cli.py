"""The `tailor` command line."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from tailor.analytics.cli import attribution, report
from tailor.batch.cli import export_events
from tailor.connectors.cli import connectors, import_command
from tailor.datadir import require_data_dir
from tailor.exceptions import TailorError
from tailor.identity.cli import identity
from tailor.journeys.cli import journeys
from tailor.keyring import KEYRING_FILE, Keyring
from tailor.privacy.cli import access, privacy
from tailor.profiles.cli import segments, traits

console = Console(stderr=False)
DataOption = click.option(
    "--data",
    "data_dir",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Data directory.",
)


class _Group(click.Group):
    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except TailorError as e:
            raise click.ClickException(str(e)) from e


@click.group(cls=_Group)
@click.version_option(package_name="tailor")
def main() -> None:
    """Tailor: collect every touch, resolve it to one person, and act on it."""


@main.command()
@click.argument("data_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--json", "as_json", is_flag=True, help="Print only a JSON object with write_key and admin_token."
)
@click.option(
    "--source", "source_name", default="default", show_default=True, help="Name of the first source."
)
def init(data_dir: Path, as_json: bool, source_name: str) -> None:
    """Create a data directory with a default source; prints its write key and an admin token."""
    from tailor.datadir import init_data_dir

    creds = init_data_dir(data_dir, source_name)
    if as_json:
        click.echo(json.dumps({"write_key": creds.write_key, "admin_token": creds.admin_token}))
        return
    console.print(f"Created [bold]{data_dir}[/bold]")
    console.print(f"  source      {source_name} ({creds.source_id})")
    console.print(f"  write key   [green]{creds.write_key}[/green]")
    console.print(f"  admin token [yellow]{creds.admin_token}[/yellow]")
    console.print("Both are shown only now; Tailor keeps only their hashes.")


@main.command()
@DataOption
@click.option("--host", default=None, help="Interface to bind (default from tailor.toml: 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port to bind (default from tailor.toml: 8080).")
def serve(data_dir: Path, host: str | None, port: int | None) -> None:
    """Run collector, processor and admin API."""
    from tailor.runtime import Runtime
    from tailor.server import serve as run_server

    runtime = Runtime(data_dir)
    config = runtime.config.server
    click.echo(f"Tailor serving {data_dir} on http://{host or config.host}:{port or config.port}", err=True)
    run_server(data_dir, host, port, runtime=runtime)


@main.command()
@click.option(
    "--data",
    "data_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Data directory (default: a fresh ./demo-data).",
)
@click.option("--no-serve", is_flag=True, help="Exit after the results instead of serving.")
@click.option(
    "--people", type=int, default=2000, show_default=True, help="Size of the synthetic customer base."
)
@click.option("--seed", type=int, default=42, show_default=True, help="Seed of the synthetic customer base.")
@click.option("--port", type=int, default=8080, show_default=True, help="Port to serve on afterwards.")
def demo(data_dir: Path | None, no_serve: bool, people: int, seed: int, port: int) -> None:
    """Run the main job end to end on the embedded default and show the results."""
    from tailor.demo.scenario import run_demo

    run_demo(data_dir, serve=not no_serve, people=people, seed=seed, port=port, console=console)


@main.command()
@click.option("--data", "data_dir", type=click.Path(file_okay=False, path_type=Path), help="Data directory.")
@click.option("--engine", type=click.Choice(["duckdb", "spark"]), help="Batch rebuild of exported events.")
@click.option("--events", help="Parquet event log (tailor export-events), local or object storage.")
@click.option("--out", help="Directory (or object storage prefix) for the batch rebuild's Parquet outputs.")
@click.option("--definitions", type=click.Path(dir_okay=False, path_type=Path), help="definitions.json.")
@click.option("--now", help="Evaluation time, ISO 8601 (default: now).")
@click.option("--master", help="Spark master (default: the session spark-submit made, else local[2]).")
@click.option(
    "--spark-conf",
    multiple=True,
    metavar="KEY=VALUE",
    help="A Spark setting for the session made here, e.g. spark.driver.memory=12g (repeatable).",
)
def rebuild(
    data_dir: Path | None,
    engine: str | None,
    events: str | None,
    out: str | None,
    definitions: Path | None,
    now: str | None,
    master: str | None,
    spark_conf: tuple[str, ...],
) -> None:
    """Rebuild every processing stage from the event log (the server must be stopped); with --events,
    rebuild profiles, identities, traits and memberships from exported events as Parquet instead."""
    from tailor.runtime import Runtime

    if events is not None or engine is not None:
        from tailor.batch.cli import batch_rebuild

        if events is None or out is None:
            raise click.UsageError("a batch rebuild needs --events and --out")
        settings = {}
        for item in spark_conf:
            key, sep, value = item.partition("=")
            if not sep or not key.strip():
                raise click.BadParameter(f"{item!r} is not KEY=VALUE", param_hint="--spark-conf")
            settings[key.strip()] = value.strip()
        batch_rebuild(engine or "duckdb", events, out, data_dir, definitions, now, master, settings or None)
        return
    if data_dir is None:
        raise click.UsageError("give --data DIR (or --events and --out for a batch rebuild)")

    with Runtime(data_dir) as runtime, console.status("rebuilding from the event log"):
        runtime.processor.rebuild()
        console.print(f"rebuilt {len(runtime.processor.stages)} stages up to seq {runtime.processor.head()}")


@main.group()
def sources() -> None:
    """Manage sources and their write keys (works while the server runs)."""


def _keyring(data_dir: Path) -> Keyring:
    return Keyring(require_data_dir(data_dir) / KEYRING_FILE)


@sources.command("list")
@DataOption
def sources_list(data_dir: Path) -> None:
    """List sources with the prefixes of their live write keys."""
    table = Table("id", "name", "live write keys")
    for s in _keyring(data_dir).sources():
        table.add_row(s.id, s.name, ", ".join(f"{p}…" for p in s.key_prefixes))
    console.print(table)


@sources.command("add")
@DataOption
@click.argument("name")
def sources_add(data_dir: Path, name: str) -> None:
    """Add a source and print its write key."""
    source_id, key = _keyring(data_dir).add_source(name)
    click.echo(json.dumps({"source_id": source_id, "write_key": key}))


@sources.command("rotate")
@DataOption
@click.argument("name")
@click.option(
    "--grace",
    type=float,
    default=86_400,
    show_default=True,
    help="Seconds the old keys keep working (0 revokes them now).",
)
def sources_rotate(data_dir: Path, name: str, grace: float) -> None:
    """Issue a new write key for a source; old keys expire after the grace period."""
    key = _keyring(data_dir).rotate_key(name, grace)
    click.echo(json.dumps({"source": name, "write_key": key, "old_keys_expire_in_s": grace}))


@sources.command("revoke")
@DataOption
@click.argument("name")
def sources_revoke(data_dir: Path, name: str) -> None:
    """Revoke every write key of a source now (a running server stops accepting them within a second)."""
    n = _keyring(data_dir).revoke_keys(name)
    click.echo(json.dumps({"source": name, "revoked_keys": n}))


@main.command("token")
@DataOption
@click.option("--name", default="admin", show_default=True)
def token(data_dir: Path, name: str) -> None:
    """Create another admin token."""
    click.echo(_keyring(data_dir).add_admin_token(name))


main.add_command(identity)
main.add_command(traits)
main.add_command(segments)
main.add_command(import_command)
main.add_command(connectors)
main.add_command(attribution)
main.add_command(report)
main.add_command(privacy)
main.add_command(access)
main.add_command(export_events)
main.add_command(journeys)

if __name__ == "__main__":
    sys.exit(main())
