"""Tailor's side of a CRM sync: each contact's profile and the surviving values of the synced traits."""

from __future__ import annotations

from dataclasses import dataclass, field

from tailor.connectors.crm.merge import TailorValue
from tailor.connectors.crm.spec import CrmSyncSpec
from tailor.store.database import Database


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


@dataclass
class LinkedContact:
    """A contact's record as identity holds it: its profile and that profile's synced traits."""

    profile_id: str
    traits: dict[str, TailorValue] = field(default_factory=dict)


def linked_contacts(db: Database, spec: CrmSyncSpec) -> dict[str, LinkedContact]:
    """Every contact whose record identity resolution has placed in a profile, by contact key."""
    prefix = f"{spec.record}:"
    traits = ", ".join(_literal(spec.trait(c)) for c in spec.fields)
    rows = db.execute(
        f"""SELECT substr(n.value, {len(prefix) + 1}) AS contact, n.profile_id,
                   t.trait, t.text, t.seq, t.observed_at, t.source_id
        FROM identity_nodes n
        LEFT JOIN profile_traits t ON t.profile_id = n.profile_id AND t.trait IN ({traits})
        WHERE n.type = 'record' AND starts_with(n.value, {_literal(prefix)})"""
    )
    out: dict[str, LinkedContact] = {}
    for contact, profile_id, trait, text, seq, observed_at, source_id in rows:
        linked = out.setdefault(str(contact), LinkedContact(str(profile_id)))
        if trait is not None:
            linked.traits[str(trait)] = TailorValue(text, int(seq), observed_at, str(source_id))
    return out


@dataclass(frozen=True)
class NewProfile:
    """A profile without a contact of this CRM, with the identifier it is inserted by."""

    profile_id: str
    identifier: str
    traits: dict[str, str]


def profiles_without_contact(db: Database, spec: CrmSyncSpec) -> list[NewProfile]:
    """Profiles holding an `insert_when` identifier and no record of the CRM's kind."""
    traits = ", ".join(_literal(spec.trait(c)) for c in spec.fields)
    rows = db.execute(
        f"""WITH candidates AS (
                SELECT profile_id, min(value) AS identifier FROM identity_nodes
                WHERE type = {_literal(spec.insert_when)} GROUP BY profile_id
            ), linked AS (
                SELECT DISTINCT profile_id FROM identity_nodes
                WHERE type = 'record' AND starts_with(value, {_literal(spec.record + ":")})
            )
            SELECT c.profile_id, c.identifier, t.trait, t.text
            FROM candidates c ANTI JOIN linked USING (profile_id)
            LEFT JOIN profile_traits t ON t.profile_id = c.profile_id AND t.trait IN ({traits})
            ORDER BY c.profile_id"""
    )
    found: dict[str, NewProfile] = {}
    for profile_id, identifier, trait, text in rows:
        profile = found.setdefault(str(profile_id), NewProfile(str(profile_id), str(identifier), {}))
        if trait is not None:
            profile.traits[str(trait)] = str(text)
    return list(found.values())


def imports_applied(db: Database, source_id: str) -> bool:
    """Whether identity resolution and profiles have applied every event of the source."""
    rows = db.execute(
        """SELECT coalesce((SELECT max(seq) FROM events WHERE source_id = ?), 0)
                  <= coalesce((SELECT min("offset") FROM stage_offsets
                               WHERE stage IN ('identity_graph', 'profiles')), 0)""",
        [source_id],
    )
    return bool(rows[0][0])
