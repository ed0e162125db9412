"""Ground truth: which person every identifier and every record row belongs to."""

from __future__ import annotations

from collections.abc import Iterable

from tailor.demo.model import Person, Population
from tailor.demo.plans import caller_contact_id
from tailor.demo.pools import JUNK_EMAILS, JUNK_USER_IDS

TruthRow = tuple[str, str, str]


def identity_truth(pop: Population) -> list[TruthRow]:
    """(kind, value, person_id) for every identifier a person has.

    A (kind, value) listed under several people is genuinely shared: a family device, a household
    landline or a family account. Junk values are listed with an empty person_id: they belong to nobody.
    """
    rows: set[TruthRow] = set()
    people = pop.people
    for p in people:
        pid = p.person_id
        home = pop.households[p.household]
        rows.add(("household", home.household_id, pid))
        rows.add(("anonymous_id", p.subscriber_id, pid))
        if p.user_id is not None:
            rows.add(("user_id", p.user_id, pid))
        if p.pos_token is not None:
            rows.add(("anonymous_id", p.pos_token, pid))
        for email in p.emails:
            rows.add(("email", email, pid))
        if p.mobile is not None:
            rows.add(("phone", p.mobile.e164, pid))
        if home.landline is not None:
            rows.add(("phone", home.landline.e164, pid))
        if home.family_account is not None and p.user_id is not None:
            rows.add(("group_id", home.family_account, pid))
        for call in p.calls:
            if call.phone is not None:
                rows.add(("anonymous_id", caller_contact_id(call.phone), pid))
    for device in pop.devices:
        for user in device.users:
            pid = people[user].person_id
            for anon in device.anonymous_ids:
                rows.add(("anonymous_id", anon, pid))
            if device.device_id is not None:
                rows.add(("device_id", device.device_id, pid))
    rows.update(("junk_user_id", value, "") for value in JUNK_USER_IDS)
    rows.update(("junk_email", value, "") for value in JUNK_EMAILS)
    return sorted(rows)


def record_truth(
    source: str, id_column: str, rows: Iterable[tuple[dict[str, str], Person]]
) -> list[TruthRow]:
    """("record", "<source>:<row id>", person_id) for each row of a record source."""
    out = [("record", f"{source}:{row[id_column]}", person.person_id) for row, person in rows]
    if source == "crm":
        out += [("crm_id", row["crm_id"], person.person_id) for row, person in rows]
    return out
