"""Query definitions of what destinations export: SQL over the store, one row per key.

A destination exports whatever its `query` returns; these functions write the usual ones. The
profile, computed-trait and segment tables are being built elsewhere: "profiles with traits X, Y"
and "members of segment S" become two more functions here, each one SELECT over those tables.
"""

from __future__ import annotations


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
