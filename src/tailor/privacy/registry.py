"""Per-person data: the protocol every table holding personal data follows, and the registry of them.

Export and erasure work on a `Person` whose keys, events, profile ids and quarantine entries are
first written to temporary tables of the cursor (`_pp_keys(k, type, value)`, `_pp_events(seq)`,
`_pp_profiles(profile_id)`, `_pp_records(record)`, `_pp_quarantine(id)`, see
`tailor.privacy.person`). A table then needs only a predicate over them:

    PersonalDataTable("segment_members", "profile_id IN (SELECT profile_id FROM _pp_profiles)")

A stage that owns such tables lists them in a `personal_data()` method (found on every stage of
the processor); anything else adds itself with `register()`. Parts that need their own logic
(counters to decrement, files outside DuckDB) implement `PersonalData` directly.
"""

from __future__ import annotations

import base64
import contextlib
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Protocol, runtime_checkable

import duckdb
import msgspec

from tailor.store.database import run


@runtime_checkable
class PersonalData(Protocol):
    """A part of the store that holds data about people: it can export and erase one person."""

    @property
    def name(self) -> str:
        """The part's name: the export's section for it."""
        ...

    def export(self, cur: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
        """The person's rows (the `_pp_*` temporary tables say who), as JSON-ready dicts."""
        ...

    def erase(self, cur: duckdb.DuckDBPyConnection) -> int:
        """Deletes the person's rows so that a compaction removes their bytes; returns how many."""
        ...


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, bytes | bytearray | memoryview):
        raw = bytes(value)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return {"base64": base64.b64encode(raw).decode()}
    if isinstance(value, int) and value > 2**53:
        return str(value)  # UBIGINT keys would lose digits in JSON numbers
    return value


@dataclass(frozen=True)
class PersonalDataTable:
    """A DuckDB table whose rows matching `where` belong to the person.

    Erasure deletes them; DuckDB keeps deleted rows' bytes in the file until the table is written
    again, which `tailor.privacy.compaction` does.
    """

    table: str
    where: str
    json_columns: tuple[str, ...] = ()
    """Text columns holding JSON, exported as objects."""
    order_by: str | None = None
    name: str = field(default="")

    def __post_init__(self) -> None:
        if not self.name:
            object.__setattr__(self, "name", self.table)

    def export(self, cur: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
        """The person's rows."""
        order = f" ORDER BY {self.order_by}" if self.order_by else ""
        result = run(cur, f"SELECT * FROM {self.table} WHERE {self.where}{order}")
        names = [d[0] for d in result.description or []]
        out = []
        for row in result.fetchall():
            item = {n: _plain(v) for n, v in zip(names, row, strict=True)}
            for column in self.json_columns:
                text = item.get(column)
                if isinstance(text, str):
                    with contextlib.suppress(msgspec.DecodeError):
                        item[column] = msgspec.json.decode(text)
            out.append(item)
        return out

    def erase(self, cur: duckdb.DuckDBPyConnection) -> int:
        """Deletes the person's rows; their bytes leave the file at the next compaction."""
        ((count,),) = run(cur, f"SELECT count(*) FROM {self.table} WHERE {self.where}").fetchall()
        if count:
            run(cur, f"DELETE FROM {self.table} WHERE {self.where}")
        return int(count)


_REGISTERED: list[PersonalData] = []


def register(part: PersonalData) -> PersonalData:
    """Adds a part to every export and erasure (a module registers its tables when imported)."""
    if any(p.name == part.name for p in _REGISTERED):
        raise ValueError(f"personal data part {part.name!r} is registered twice")
    _REGISTERED.append(part)
    return part


def registered() -> list[PersonalData]:
    """The registered parts, in registration order."""
    return list(_REGISTERED)


def parts_of(stages: list[object]) -> list[PersonalData]:
    """The registered parts followed by those the stages declare (`personal_data()`), without repeats."""
    parts = registered()
    for stage in stages:
        declare = getattr(stage, "personal_data", None)
        if declare is not None:
            parts.extend(declare())
    seen: set[str] = set()
    out = []
    for p in parts:
        if p.name not in seen:
            seen.add(p.name)
            out.append(p)
    return out
