"""One person as export and erasure see them: a profile with every identifier identity merged into it.

`materialise` writes the person into temporary tables of a cursor, which the registered
`PersonalData` parts read: `_pp_keys(k, type, value)` (identity nodes), `_pp_profiles(profile_id)`
(the current id and those of profiles merged into it), `_pp_events(seq)` (every event whose hub
is one of the keys), `_pp_records(record)` (imported records, `KIND:ID`) and `_pp_quarantine(id)`
(quarantined messages naming one of the identifiers: they were never resolved, so their payloads
are read here, with the identity normaliser).
"""

from __future__ import annotations

import re
from typing import Any

import duckdb
import msgspec

from tailor.identity.graph import NODE_KEY
from tailor.identity.normalise import IdentifierNormaliser
from tailor.store.database import run

_EMAIL = re.compile(r"[^\s\"'<>,;:()\[\]{}]+@[^\s\"'<>,;:()\[\]{}]+\.[A-Za-z]{2,}")
_PHONE = re.compile(r"\+?\d[\d\s().-]{6,}\d")


class Person(msgspec.Struct):
    """A profile and its identifiers (normalised as identity keeps them)."""

    profile_id: str
    profile_ids: list[str]
    identifiers: list[tuple[str, str]]


def load_person(cur: duckdb.DuckDBPyConnection, profile_id: str) -> Person:
    """The person of a current profile id: its identifiers and the ids merged into it."""
    ids = [
        (str(t), str(v))
        for t, v in run(
            cur,
            "SELECT type, value FROM identity_nodes WHERE profile_id = ? ORDER BY type, value",
            [profile_id],
        ).fetchall()
    ]
    aliases = [
        str(a)
        for (a,) in run(
            cur, "SELECT old_id FROM profile_aliases WHERE profile_id = ?", [profile_id]
        ).fetchall()
    ]
    return Person(profile_id, [profile_id, *sorted(aliases)], ids)


def materialise(cur: duckdb.DuckDBPyConnection, person: Person, normaliser: IdentifierNormaliser) -> None:
    """Writes the person's keys, profile ids, events, records and quarantine entries into `_pp_*` tables."""
    run(cur, "CREATE OR REPLACE TEMP TABLE _pp_ids (type VARCHAR, value VARCHAR)")
    if person.identifiers:
        run(
            cur,
            "INSERT INTO _pp_ids SELECT unnest(?), unnest(?)",
            [[t for t, _ in person.identifiers], [v for _, v in person.identifiers]],
        )
    run(
        cur,
        f"""CREATE OR REPLACE TEMP TABLE _pp_keys AS
        SELECT {NODE_KEY.format(t="type", v="value")} AS k, type, value FROM _pp_ids""",
    )
    run(
        cur,
        "CREATE OR REPLACE TEMP TABLE _pp_profiles AS SELECT unnest(?::VARCHAR[]) AS profile_id",
        [person.profile_ids],
    )
    run(
        cur,
        """CREATE OR REPLACE TEMP TABLE _pp_events AS
        SELECT DISTINCT seq FROM identity_event_hubs WHERE k IN (SELECT k FROM _pp_keys)""",
    )
    run(
        cur,
        "CREATE OR REPLACE TEMP TABLE _pp_records AS"
        " SELECT value AS record FROM _pp_keys WHERE type = 'record'",
    )
    found = quarantine_entries(cur, person, normaliser)
    run(cur, "CREATE OR REPLACE TEMP TABLE _pp_quarantine AS SELECT unnest(?::BIGINT[]) AS id", [found])


def drop_materialised(cur: duckdb.DuckDBPyConnection) -> None:
    """Drops the `_pp_*` tables."""
    for table in ("_pp_ids", "_pp_keys", "_pp_profiles", "_pp_events", "_pp_records", "_pp_quarantine"):
        run(cur, f"DROP TABLE IF EXISTS {table}")


def _candidates(payload: Any) -> list[tuple[str, Any]]:
    """The identifiers a decoded message names, by where Segment messages keep them."""
    if not isinstance(payload, dict):
        return []
    out: list[tuple[str, Any]] = [
        ("user_id", payload.get("userId")),
        ("anonymous_id", payload.get("anonymousId")),
        ("anonymous_id", payload.get("previousId")),
    ]
    for holder in (payload.get("traits"), (payload.get("context") or {}).get("traits")):
        if isinstance(holder, dict):
            out += [("email", holder.get("email")), ("phone", holder.get("phone"))]
    context = payload.get("context")
    if isinstance(context, dict):
        device = context.get("device")
        if isinstance(device, dict):
            out.append(("device_id", device.get("id")))
        for x in context.get("externalIds") or []:
            if isinstance(x, dict):
                out.append((str(x.get("type", "")), x.get("id")))
    return out


def quarantine_entries(
    cur: duckdb.DuckDBPyConnection, person: Person, normaliser: IdentifierNormaliser
) -> list[int]:
    """Ids of quarantined messages that name one of the person's identifiers.

    A payload that decodes is read field by field; one that does not (broken JSON, a CSV line) is
    searched for anything shaped like an email or phone number. Values are normalised before
    comparing, so `Ana@Example.org` and `+44 7700 900123` are found too.
    """
    mine = set(person.identifiers)
    texts = {v for _, v in person.identifiers}
    found = []
    for entry_id, payload in run(cur, "SELECT id, payload FROM quarantine").fetchall():
        text = bytes(payload).decode("utf-8", "replace")
        try:
            pairs = _candidates(msgspec.json.decode(text))
            # A batch body quarantined whole holds many messages.
            decoded = msgspec.json.decode(text)
            if isinstance(decoded, dict) and isinstance(decoded.get("batch"), list):
                for message in decoded["batch"]:
                    pairs += _candidates(message)
        except msgspec.DecodeError:
            pairs = []
        pairs += [("email", m) for m in _EMAIL.findall(text)] + [("phone", m) for m in _PHONE.findall(text)]
        if any(_matches(normaliser, t, v, mine, texts) for t, v in pairs):
            found.append(int(entry_id))
    return found


def _matches(
    normaliser: IdentifierNormaliser, type: str, raw: Any, mine: set[tuple[str, str]], texts: set[str]
) -> bool:
    if raw is None or not isinstance(raw, str | int) or isinstance(raw, bool):
        return False
    value = str(raw)
    if value.strip() in texts:
        return True
    try:
        outcome = normaliser.normalise(type, value)
    except Exception:  # an unknown identifier type in a broken message
        return False
    return outcome.value is not None and (normaliser.retype(type, outcome.value), outcome.value) in mine
