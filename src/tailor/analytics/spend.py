"""Marketing spend: a CSV of date, channel, campaign, cost (optional currency) imported per row.

Every problem is reported with its line and field (a date that is not YYYY-MM-DD, a cost that is
not a non-negative number, a currency that is not an ISO 4217 code or not the report currency, a
missing channel); the good rows are stored. A row for a date, channel and campaign already stored
replaces it, so importing a corrected file again is safe.
"""

from __future__ import annotations

import csv
import io
import math
import re
from datetime import date

import msgspec
import pyarrow as pa

from tailor.analytics.exceptions import BadInputError, InputProblem
from tailor.store.database import Database, arrow_transaction

SPEND_DDL = """CREATE TABLE IF NOT EXISTS analytics_spend (
    day DATE NOT NULL,
    channel VARCHAR NOT NULL,
    campaign VARCHAR NOT NULL,
    cost DOUBLE NOT NULL,
    currency VARCHAR NOT NULL,
    source VARCHAR NOT NULL,
    line BIGINT NOT NULL,
    PRIMARY KEY (day, channel, campaign)
)"""
_CURRENCY = re.compile(r"^[A-Z]{3}$")
REQUIRED = ("date", "channel", "cost")


class SpendImport(msgspec.Struct):
    """What an import stored, and every problem with its line."""

    rows: int
    stored: int
    problems: list[InputProblem]


def setup(db: Database) -> None:
    """Creates the spend table."""
    db.ddl(SPEND_DDL)


def parse_spend(
    text: str, currency: str
) -> tuple[list[tuple[date, str, str, float, str, int]], list[InputProblem]]:
    """Rows (day, channel, campaign, cost, currency, line) of a spend CSV, and the problems of the rest."""
    reader = csv.reader(io.StringIO(text))
    header = [h.strip().lower() for h in next(reader, [])]
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise BadInputError(f"spend file: no column {', '.join(missing)} (columns: {', '.join(header)})", [])
    col = {name: header.index(name) for name in header}
    good, problems = [], []
    for line, row in enumerate(reader, start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            problems.append(InputProblem(line, "row", f"expected {len(header)} fields, found {len(row)}"))
            continue

        def get(name: str, row: list[str] = row) -> str:
            return row[col[name]].strip() if name in col else ""

        found: list[InputProblem] = []
        day = None
        try:
            day = date.fromisoformat(get("date"))
        except ValueError:
            found.append(InputProblem(line, "date", f"not a date as YYYY-MM-DD: {get('date')!r}"))
        channel = get("channel")
        if not channel:
            found.append(InputProblem(line, "channel", "missing"))
        cost = math.nan
        raw = get("cost").replace(",", "")
        try:
            cost = float(raw)
        except ValueError:
            found.append(InputProblem(line, "cost", f"not a number: {get('cost')!r}"))
        else:
            if not math.isfinite(cost) or cost < 0:
                found.append(InputProblem(line, "cost", f"must be a non-negative amount: {get('cost')!r}"))
        cur = get("currency").upper() or currency
        if not _CURRENCY.match(cur):
            found.append(
                InputProblem(line, "currency", f"not an ISO 4217 currency code: {get('currency')!r}")
            )
        elif cur != currency:
            found.append(
                InputProblem(
                    line, "currency", f"{cur} is not the report currency {currency}; convert it first"
                )
            )
        if found:
            problems += found
        else:
            assert day is not None
            good.append((day, channel, get("campaign") or "(none)", cost, cur, line))
    return good, problems


def import_spend(db: Database, text: str, source: str, currency: str) -> SpendImport:
    """Parses and stores a spend CSV; rows with problems are reported and not stored."""
    setup(db)
    good, problems = parse_spend(text, currency)
    rows = len(good) + len({p.line for p in problems})
    table = pa.table(
        {
            "day": pa.array([g[0] for g in good], pa.date32()),
            "channel": [g[1] for g in good],
            "campaign": [g[2] for g in good],
            "cost": pa.array([g[3] for g in good], pa.float64()),
            "currency": [g[4] for g in good],
            "line": pa.array([g[5] for g in good], pa.int64()),
        }
    )
    cur = db.cursor()
    try:
        # Rows of one day, channel and campaign within a file (two ad groups, say) are added up.
        with arrow_transaction(cur, _spend_in=table):
            cur.execute(
                """INSERT OR REPLACE INTO analytics_spend
                SELECT day, channel, campaign, sum(cost), any_value(currency), ?, min(line)
                FROM _spend_in GROUP BY day, channel, campaign""",
                [source],
            )
    finally:
        cur.close()
    return SpendImport(rows, len(good), problems)
