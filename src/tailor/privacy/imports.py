"""Importing consent from a CSV file (a newsletter platform's export, paper forms typed in).

Columns: `identifier` (TYPE:VALUE), or one of `email`, `phone`, `user_id`; `purpose`; `status`;
optional `channel`, `legal_basis`, `source` and `timestamp` (ISO 8601, when the person chose).
Each good row becomes a `Consent Updated` event of source `import:consent`, so it is replayed by
rebuilds like everything else; a bad row is quarantined with its line number and field.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from tailor.collect.messages import FieldError, Rejection
from tailor.collect.writer import Submission
from tailor.identity.service import BadIdentifierError
from tailor.privacy.exceptions import ConsentPayloadError, PrivacyError
from tailor.privacy.service import consent_rows

if TYPE_CHECKING:
    from tailor.runtime import Runtime

SOURCE = "import:consent"
_ID_COLUMNS = ("identifier", "email", "phone", "user_id")


@dataclass
class ConsentImport:
    """What one import did."""

    stored: int = 0
    quarantined: int = 0
    errors: list[str] = field(default_factory=list)


def import_consent(rt: Runtime, path: Path) -> ConsentImport:
    """Imports a consent CSV; rows that cannot be used are quarantined with their line and field."""
    try:
        handle = path.open(encoding="utf-8-sig", newline="")
    except FileNotFoundError as e:
        raise PrivacyError(f"{path}: no such file") from e
    with handle:
        reader = csv.DictReader(handle)
        header = reader.fieldnames or []
        id_column = next((c for c in _ID_COLUMNS if c in header), None)
        if id_column is None or "purpose" not in header or "status" not in header:
            raise PrivacyError(
                f"{path}: needs columns identifier (or email, phone, user_id), purpose and status"
            )
        items = []
        bad: list[Rejection] = []
        for row in reader:
            line = reader.line_num
            raw = ",".join(str(row.get(c) or "") for c in header).encode()
            errors = []
            value = (row.get(id_column) or "").strip()
            identifier = value if id_column == "identifier" else f"{id_column}:{value}"
            statement = {
                k: row[k].strip()
                for k in ("purpose", "status", "channel", "legal_basis", "source")
                if row.get(k) not in (None, "")
            }
            at = None
            try:
                type, normalised = rt.identity_service.parse(identifier)
                rt.privacy.parser.event(statement, "import", path=f"line {line}")
            except BadIdentifierError as e:
                errors.append(FieldError(f"line {line}.{id_column}", str(e)))
            except ConsentPayloadError as e:
                errors += e.errors
            if row.get("timestamp"):
                try:
                    at = datetime.fromisoformat(row["timestamp"].strip()).astimezone(UTC)
                except ValueError:
                    errors.append(FieldError(f"line {line}.timestamp", "not an ISO 8601 date-time"))
            if errors:
                bad.append(Rejection(line, errors, raw))
                continue
            items.append((type, normalised, statement, at))
    rows = consent_rows(items, SOURCE)
    receipt = rt.writer.write(Submission(SOURCE, "import:consent", datetime.now(UTC), rows, bad))
    rt.processor.run_once()
    return ConsentImport(receipt.stored, len(bad), [r.reason for r in bad])
