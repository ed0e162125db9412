"""Query definitions of what destinations export: SQL over the store, one row per key.

A destination exports whatever its `query` returns; these functions write the usual ones. A
destination declared with `segment = "NAME"` exports `segment_members`: an audience that follows
the segment's live membership (people who leave it are deleted at the destination).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tailor.store.database import Database


def _ident(name: str) -> str:
    if not name.replace("_", "").isalnum():
        raise ValueError(f"not a plain name: {name!r}")
    return name


def profile_identifiers(types: list[str]) -> str:
    """One row per profile: `profile_id` and, per identifier type, its first value (lowest)."""
    columns = ", ".join(f"min(value) FILTER (WHERE type = '{_ident(t)}') AS {_ident(t)}" for t in types)
    return f"SELECT profile_id, {columns} FROM identity_profiles GROUP BY profile_id"


def profile_traits(traits: list[str]) -> str:
    """One row per profile: `profile_id` and the latest identify value of each trait (any source)."""
    picks = ", ".join(
        f"arg_max(json_extract(e.traits, '$.{_ident(t)}'), e.seq)"
        f" FILTER (WHERE json_extract(e.traits, '$.{_ident(t)}') IS NOT NULL) AS {_ident(t)}"
        for t in traits
    )
    return f"""SELECT n.profile_id, {picks}
    FROM events e JOIN identity_event_hubs h ON h.seq = e.seq JOIN identity_nodes n ON n.k = h.k
    WHERE e.type = 'identify' AND e.traits IS NOT NULL GROUP BY n.profile_id"""


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def segment_members(segment: str, identifiers: list[str], traits: list[str]) -> str:
    """One row per member of a segment: `profile_id`, `since`, an identifier of each type, golden traits."""
    ids = "".join(
        f", (SELECT min(n.value) FROM identity_nodes n WHERE n.profile_id = m.profile_id"
        f" AND n.type = {_literal(t)}) AS {_ident(t)}"
        for t in identifiers
    )
    picks = "".join(
        f", (SELECT t.text FROM profile_traits t WHERE t.profile_id = m.profile_id"
        f" AND t.trait = {_literal(tr)}) AS {_ident(tr)}"
        for tr in traits
    )
    return f"""SELECT m.profile_id, m.since{ids}{picks}
    FROM segment_members m WHERE m.segment = {_literal(segment)}"""


def segment_exists(db: Database, segment: str) -> bool:
    """Whether a segment of that name is defined (exporting a missing one would empty the audience)."""
    return bool(db.execute("SELECT 1 FROM definitions WHERE kind = 'segment' AND name = ?", [segment]))
