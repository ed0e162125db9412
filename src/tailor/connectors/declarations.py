"""Connector declarations: one TOML file per connector in the data directory's `connectors/` folder.

`connectors/crm.toml` declares the connector `crm`; its `type` says what it is. Declarations are
read again whenever a file changes, so connectors can be added (by file or through the API)
while the server runs. A file that cannot be used is reported with its problems and skipped.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from tailor.connectors.crm.spec import CrmSyncSpec
from tailor.connectors.destinations.spec import (
    DestinationSpec,
    FileDestinationSpec,
    SqlDestinationSpec,
    WebhookDestinationSpec,
)
from tailor.connectors.exceptions import ConnectorError
from tailor.connectors.mapping import Mapping
from tailor.connectors.sql_source import SqlSourceSpec
from tailor.connectors.webhook_source import WebhookSourceSpec

CONNECTORS_DIR = "connectors"
NAME = re.compile(r"[a-z][a-z0-9_-]{0,63}")


class FileSourceSpec(msgspec.Struct, forbid_unknown_fields=True, tag="file_source", tag_field="type"):
    """A CSV, JSON Lines or Parquet file imported on an interval (a drop folder's export, say)."""

    path: str
    """The file, absolute or relative to the data directory."""
    mapping: Mapping
    """How each row becomes an event."""
    format: str | None = None
    """csv, jsonl or parquet (default: from the extension)."""
    interval_s: float = 3600
    """Seconds between two scheduled runs; unchanged rows store nothing."""

    def problems(self) -> list[str]:
        """What is wrong with the declaration."""
        return [f"mapping.{p}" for p in self.mapping.problems()]


ConnectorSpec = FileSourceSpec | SqlSourceSpec | WebhookSourceSpec | CrmSyncSpec | DestinationSpec
DESTINATIONS = (WebhookDestinationSpec, SqlDestinationSpec, FileDestinationSpec)
SCHEDULED = (FileSourceSpec, SqlSourceSpec, CrmSyncSpec, *DESTINATIONS)
"""The kinds that run on an interval (webhooks are pushed to Tailor instead)."""


@dataclass(frozen=True)
class Declaration:
    """One connector: its name, what it is, and the file it was read from."""

    name: str
    spec: ConnectorSpec
    path: Path

    @property
    def type(self) -> str:
        """The declared type, such as `sql_source`."""
        return str(msgspec.inspect.type_info(type(self.spec)).tag)  # type: ignore[attr-defined]

    @property
    def interval_s(self) -> float | None:
        """Seconds between scheduled runs, or None for connectors that are not scheduled."""
        return getattr(self.spec, "interval_s", None) if isinstance(self.spec, SCHEDULED) else None


def parse_spec(name: str, data: dict[str, object], where: str) -> ConnectorSpec:
    """A connector's spec from decoded TOML/JSON; ConnectorError names each problem."""
    if not NAME.fullmatch(name):
        raise ConnectorError(f"{where}: connector names are lower-case letters, digits, _ and -: {name!r}")
    try:
        spec: ConnectorSpec = msgspec.convert(data, ConnectorSpec)
    except msgspec.ValidationError as e:
        raise ConnectorError(f"{where}: {e}") from e
    problems = spec.problems()
    if problems:
        raise ConnectorError(f"{where}: " + "; ".join(problems))
    return spec


def load_declarations(data_dir: Path) -> tuple[dict[str, Declaration], dict[str, str]]:
    """Every connector declared in a data directory, and the problems of files that cannot be used."""
    found: dict[str, Declaration] = {}
    broken: dict[str, str] = {}
    folder = data_dir / CONNECTORS_DIR
    for path in sorted(folder.glob("*.toml")) if folder.is_dir() else []:
        name = path.stem
        try:
            data = tomllib.loads(path.read_text("utf-8"))
            found[name] = Declaration(name, parse_spec(name, data, str(path)), path)
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
            broken[name] = f"{path}: {e}"
        except ConnectorError as e:
            broken[name] = str(e)
    return found, broken


def save_declaration(data_dir: Path, name: str, data: dict[str, object]) -> Declaration:
    """Validates a declaration and writes it as `connectors/NAME.toml` (atomically)."""
    import tomli_w

    path = data_dir / CONNECTORS_DIR / f"{name}.toml"
    spec = parse_spec(name, data, f"connector {name}")
    path.parent.mkdir(exist_ok=True)
    tmp = path.with_suffix(".toml.tmp")
    tmp.write_text(tomli_w.dumps(_without_none(msgspec.to_builtins(spec))), "utf-8")
    tmp.replace(path)
    return Declaration(name, spec, path)


def _without_none(value: Any) -> Any:
    """TOML has no null: unset fields are left out (they take their defaults when read back)."""
    if isinstance(value, dict):
        return {k: _without_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_none(v) for v in value]
    return value


def delete_declaration(data_dir: Path, name: str) -> bool:
    """Removes a connector's file; its run history stays."""
    path = data_dir / CONNECTORS_DIR / f"{name}.toml"
    if not path.exists():
        return False
    path.unlink()
    return True
