"""`tailor privacy` (consent, export, erase, compact, retention), `tailor access` (users, tokens, audit)."""

from __future__ import annotations

import getpass
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import click
import msgspec
from rich.console import Console
from rich.table import Table

from tailor.access.audit import AUDIT_FILE, AuditLog
from tailor.access.store import AccessStore
from tailor.datadir import require_data_dir
from tailor.keyring import KEYRING_FILE

if TYPE_CHECKING:
    from tailor.runtime import Runtime

console = Console(stderr=True)
_data = click.option(
    "--data",
    "data_dir",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Data directory.",
)


def _actor() -> str:
    return f"cli:{getpass.getuser()}"


@contextmanager
def _runtime(data_dir: Path) -> Iterator[Runtime]:
    from tailor.runtime import Runtime

    with Runtime(data_dir) as rt:
        rt.writer.start()  # imports and consent records go through the writer
        yield rt


def _audit(data_dir: Path, action: str, status: int = 0, detail: str | None = None) -> None:
    log = AuditLog(require_data_dir(data_dir) / AUDIT_FILE)
    try:
        log.record(_actor(), action, status, detail=detail)
    finally:
        log.close()


@click.group()
def privacy() -> None:
    """Consent, access exports, erasure and retention (the server must be stopped)."""


@privacy.command("export")
@_data
@click.argument("identifier")
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="File to write (.zip for zipped JSON Lines); default standard output (JSON).",
)
def export_cmd(data_dir: Path, identifier: str, output: Path | None) -> None:
    """Export everything held about the person holding IDENTIFIER (TYPE:VALUE)."""
    from tailor.privacy.export import to_json, to_zip

    with _runtime(data_dir) as rt, console.status("exporting"):
        doc = rt.privacy.export(identifier)
    data = to_zip(doc) if output is not None and output.suffix == ".zip" else to_json(doc)
    if output is None:
        sys.stdout.buffer.write(data + b"\n")
    else:
        output.write_bytes(data)
    _audit(data_dir, "privacy export", 0, f"profile {doc.profile_id}")
    console.print(
        f"exported {sum(doc.counts.values())} rows of {len(doc.counts)} tables for {doc.profile_id}"
    )


@privacy.command("erase")
@_data
@click.argument("identifier")
@click.option(
    "--no-compact", is_flag=True, help="Delete now; remove the bytes at the next `privacy compact`."
)
def erase_cmd(data_dir: Path, identifier: str, no_compact: bool) -> None:
    """Erase the person holding IDENTIFIER everywhere, with a tombstone and an audit record."""
    with _runtime(data_dir) as rt, console.status("erasing"):
        result = rt.privacy.erase(identifier, _actor(), compact_now=not no_compact)
    _audit(data_dir, "privacy erase", 0, result.erasure_id)
    click.echo(msgspec.json.encode(result).decode())


@privacy.command("compact")
@_data
def compact_cmd(data_dir: Path) -> None:
    """Rewrite storage so that the bytes of everything deleted leave the data directory's files."""
    with _runtime(data_dir) as rt, console.status("compacting"):
        result = rt.privacy.compact()
    _audit(data_dir, "privacy compact", 0)
    click.echo(msgspec.json.encode(result).decode())


@privacy.command("retention")
@_data
def retention_cmd(data_dir: Path) -> None:
    """Apply the retention rules of tailor.toml now."""
    with _runtime(data_dir) as rt, console.status("applying retention"):
        result = rt.privacy.retain()
    _audit(data_dir, "privacy retention", 0, f"{result.total} events")
    click.echo(msgspec.json.encode(result).decode())


@privacy.command("consent")
@_data
@click.argument("identifier")
@click.option("--purpose", default=None, help="With --channel: the decision for one purpose.")
@click.option("--channel", default="*", show_default=True)
def consent_cmd(data_dir: Path, identifier: str, purpose: str | None, channel: str) -> None:
    """Show the current consent of the person holding IDENTIFIER (or one decision)."""
    with _runtime(data_dir) as rt:
        service = rt.privacy
        pid = service.resolve(identifier)
        if purpose is not None:
            click.echo(msgspec.json.encode(service.consent_for(pid, purpose, channel)).decode())
            return
        table = Table("purpose", "channel", "status", "legal basis", "by", "at", "seq")
        for r in service.consent.current(pid):
            table.add_row(
                r.purpose, r.channel, r.status, r.legal_basis, r.origin, r.recorded_at.isoformat(), str(r.seq)
            )
        Console().print(table)


@privacy.command("import-consent")
@_data
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
def import_consent_cmd(data_dir: Path, path: Path) -> None:
    """Import consent from a CSV file: identifier,purpose,status[,channel,legal_basis,source,timestamp]."""
    from tailor.privacy.imports import import_consent

    with _runtime(data_dir) as rt, console.status("importing consent"):
        result = import_consent(rt, path)
    for error in result.errors:
        console.print(f"[red]{error}[/red]")
    _audit(data_dir, "privacy import-consent", 0, f"{result.stored} stored, {result.quarantined} quarantined")
    click.echo(json.dumps({"stored": result.stored, "quarantined": result.quarantined}))


@click.group()
def access() -> None:
    """Console users, scoped admin tokens and the audit log (works while the server runs)."""


def _store(data_dir: Path) -> AccessStore:
    return AccessStore(require_data_dir(data_dir) / KEYRING_FILE)


@access.command("add-user")
@_data
@click.argument("username")
@click.option(
    "--scopes", default="read", show_default=True, help="read, definitions, privacy, admin (comma-separated)."
)
@click.option("--password", default=None, help="Read from a prompt when not given.")
def add_user(data_dir: Path, username: str, scopes: str, password: str | None) -> None:
    """Create a console user (password hashed with argon2id)."""
    secret = password or click.prompt("password", hide_input=True, confirmation_prompt=True)
    try:
        _store(data_dir).add_user(username, secret, scopes)
    except ValueError as e:
        raise click.ClickException(str(e)) from e
    _audit(data_dir, "access add-user", 0, f"{username} ({scopes})")
    console.print(f"created user {username} with scopes {scopes}")


@access.command("add-token")
@_data
@click.option("--name", required=True)
@click.option(
    "--scopes", default="read", show_default=True, help="read, definitions, privacy, admin (comma-separated)."
)
def add_token(data_dir: Path, name: str, scopes: str) -> None:
    """Create an admin token with scopes; prints it (shown only now)."""
    try:
        token = _store(data_dir).add_token(name, scopes)
    except ValueError as e:
        raise click.ClickException(str(e)) from e
    _audit(data_dir, "access add-token", 0, f"{name} ({scopes})")
    click.echo(token)


@access.command("revoke-token")
@_data
@click.argument("token")
def revoke_token(data_dir: Path, token: str) -> None:
    """Revoke admin tokens by prefix (at_xxxxx) or name, at once."""
    n = _store(data_dir).revoke_token(token)
    if not n:
        raise click.ClickException("no live token has that prefix or name")
    _audit(data_dir, "access revoke-token", 0, token[:8])
    console.print(f"revoked {n} token(s)")


@access.command("audit")
@_data
@click.option("--limit", type=int, default=50, show_default=True)
def audit(data_dir: Path, limit: int) -> None:
    """Show the latest admin actions."""
    log = AuditLog(require_data_dir(data_dir) / AUDIT_FILE)
    table = Table("at", "actor", "action", "target", "status", "detail")
    import datetime as dt

    for e in log.entries(limit):
        at = dt.datetime.fromtimestamp(e.at, dt.UTC).isoformat(timespec="seconds")
        table.add_row(at, e.actor, e.action, e.target or "", str(e.status), e.detail or "")
    Console().print(table)
