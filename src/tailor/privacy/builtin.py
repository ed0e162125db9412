"""The per-person parts of the foundation's tables: the event log, quarantine, records, identity, consent."""

from __future__ import annotations

from typing import Any

import duckdb

from tailor.privacy.registry import PersonalData, PersonalDataTable
from tailor.store.database import run

_EVENTS = "seq IN (SELECT seq FROM _pp_events)"
_KEYS = "(SELECT k FROM _pp_keys)"
_PROFILES = "(SELECT profile_id FROM _pp_profiles)"
_IDS = "(SELECT (type, value) FROM _pp_ids)"


class EventVolumeCounts:
    """`event_volume` holds counts, not people: erasure takes the person's events out of them."""

    name = "event_volume"

    def export(self, cur: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
        """Nothing: the counts are about all events, not about one person."""
        return []

    def erase(self, cur: duckdb.DuckDBPyConnection) -> int:
        """Subtracts the person's events (run before the events are deleted), so live equals a rebuild."""
        run(
            cur,
            """UPDATE event_volume SET events = event_volume.events - p.n
            FROM (SELECT CAST(timezone('UTC', timestamp) AS DATE) AS day, source_id, type,
                         coalesce(event, name, '') AS event, count(*) AS n
                  FROM events WHERE seq IN (SELECT seq FROM _pp_events) GROUP BY ALL) p
            WHERE event_volume.day = p.day AND event_volume.source_id = p.source_id
              AND event_volume.type = p.type AND event_volume.event = p.event""",
        )
        ((n,),) = run(cur, "SELECT count(*) FROM event_volume WHERE events <= 0").fetchall()
        run(cur, "DELETE FROM event_volume WHERE events <= 0")
        return int(n)


def builtin_parts() -> list[PersonalData]:
    """The foundation's tables holding personal data, in the order they are exported and erased."""
    return [
        EventVolumeCounts(),  # before the events it counts are deleted
        PersonalDataTable(
            "events",
            _EVENTS,
            json_columns=("properties", "traits", "context", "integrations"),
            order_by="seq",
        ),
        PersonalDataTable(
            "quarantine", "id IN (SELECT id FROM _pp_quarantine)", json_columns=("errors",), order_by="id"
        ),
        PersonalDataTable(
            "records",
            "kind || ':' || record_id IN (SELECT record FROM _pp_records)",
            json_columns=("fields",),
        ),
        PersonalDataTable("identity_nodes", f"k IN {_KEYS}", order_by="first_seq"),
        PersonalDataTable("identity_sightings", f"k IN {_KEYS}"),
        PersonalDataTable("identity_edges", f"a IN {_KEYS} OR b IN {_KEYS}", order_by="seq"),
        PersonalDataTable("identity_edge_sightings", f"a IN {_KEYS} OR b IN {_KEYS}"),
        PersonalDataTable("identity_event_hubs", f"{_EVENTS} OR k IN {_KEYS}", order_by="seq"),
        PersonalDataTable("identity_refusals", _EVENTS, order_by="seq"),
        PersonalDataTable(
            "identity_overrides",
            f"(a_type, a_value) IN {_IDS} OR (b_type, b_value) IN {_IDS}",
            order_by="created_at",
        ),
        PersonalDataTable(
            "identity_matches",
            "a IN (SELECT record FROM _pp_records) OR b IN (SELECT record FROM _pp_records)",
            json_columns=("contributions",),
        ),
        PersonalDataTable("profile_aliases", f"profile_id IN {_PROFILES} OR old_id IN {_PROFILES}"),
        PersonalDataTable(
            "profile_changes", f"profile_id IN {_PROFILES} OR other_id IN {_PROFILES}", order_by="seq"
        ),
        PersonalDataTable("consent_records", f"k IN {_KEYS} OR {_EVENTS}", order_by="recorded_at, seq"),
        PersonalDataTable("consent_current", f"profile_id IN {_PROFILES}", order_by="purpose, channel"),
    ]
