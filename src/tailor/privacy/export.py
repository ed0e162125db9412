"""The access export of one person: everything the store holds about them, as JSON or zipped JSON Lines."""

from __future__ import annotations

import io
import zipfile
from datetime import datetime
from typing import Any

import msgspec

from tailor.privacy.decisions import ConsentRecord


class TraitVersion(msgspec.Struct):
    """One value a trait had, and where it came from: the event (or imported record) that set it."""

    trait: str
    value: Any
    source_id: str
    seq: int
    at: str


class ExportDocument(msgspec.Struct):
    """What the store holds about one person, section by section (a section per table)."""

    profile_id: str
    profile_ids: list[str]
    """The current profile id and those of profiles merged into it."""
    identifiers: list[dict[str, str]]
    exported_at: datetime
    consent: list[ConsentRecord]
    """The current consent per purpose and channel (the history is the consent_records section)."""
    traits: list[TraitVersion]
    """Every identify trait value with its provenance, oldest first."""
    counts: dict[str, int]
    sections: dict[str, list[dict[str, Any]]]
    format: str = "tailor-access-export/1"


def trait_versions(events: list[dict[str, Any]]) -> list[TraitVersion]:
    """Every value every identify event set, with its source, seq and time."""
    out = []
    for e in events:
        traits = e.get("traits")
        if e.get("type") == "identify" and isinstance(traits, dict):
            for key, value in traits.items():
                if value not in (None, ""):
                    out.append(TraitVersion(key, value, e["source_id"], e["seq"], e["timestamp"]))
    return out


def to_json(doc: ExportDocument) -> bytes:
    """The whole export as one JSON document."""
    return msgspec.json.encode(doc)


def to_zip(doc: ExportDocument) -> bytes:
    """`person.json` (everything but the sections) and one `SECTION.jsonl` file per section."""
    buffer = io.BytesIO()
    encode = msgspec.json.encode
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        head = msgspec.structs.asdict(doc)
        head.pop("sections")
        z.writestr("person.json", encode(head))
        for name, rows in doc.sections.items():
            z.writestr(f"{name}.jsonl", b"".join(encode(r) + b"\n" for r in rows))
    return buffer.getvalue()
