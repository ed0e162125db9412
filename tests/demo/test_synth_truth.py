"""The ground truth: every identifier and record row belongs to a known person, and the traps are there."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from tailor.demo.pools import JUNK_USER_IDS
from tailor.demo.synth import CustomerBase, EventLabel

Truth = list[tuple[str, str, str]]
Labelled = list[tuple[EventLabel, dict[str, Any]]]


def _owners(truth: Truth, *kinds: str) -> dict[str, set[str]]:
    owners: defaultdict[str, set[str]] = defaultdict(set)
    for kind, value, person in truth:
        if kind in kinds:
            owners[value].add(person)
    return owners


def test_truth_covers_every_identifier_in_the_events(events: list[dict[str, Any]], truth: Truth) -> None:
    users = _owners(truth, "user_id", "junk_user_id")
    anons = _owners(truth, "anonymous_id")
    devices = _owners(truth, "device_id")
    for e in events:
        if "userId" in e:
            assert e["userId"] in users, e
        if "anonymousId" in e:
            assert e["anonymousId"] in anons, e
        device = e["context"].get("device")
        if device:
            assert device["id"] in devices, e


def test_truth_covers_every_record_row(records: dict[str, list[dict[str, str]]], truth: Truth) -> None:
    ids = {"crm": "crm_id", "call_centre": "call_id", "guest_checkout": "order_id"}
    expected = {f"{kind}:{row[ids[kind]]}" for kind, rows in records.items() for row in rows}
    listed = [value for kind, value, _ in truth if kind == "record"]
    assert set(listed) == expected
    assert len(listed) == len(expected)
    assert {value for kind, value, _ in truth if kind == "crm_id"} == {r["crm_id"] for r in records["crm"]}


def test_labels_agree_with_the_truth(labelled: Labelled, truth: Truth) -> None:
    users = _owners(truth, "user_id")
    anons = _owners(truth, "anonymous_id")
    for label, e in labelled:
        if e.get("type") == "identify" and e.get("userId") in users:
            assert label.person_id in anons.get(e.get("anonymousId", ""), {label.person_id})
        if "anonymousId" in e:
            assert label.person_id in anons[e["anonymousId"]]


def test_each_user_id_belongs_to_one_person(truth: Truth) -> None:
    users = _owners(truth, "user_id")
    assert users
    assert all(len(people) == 1 for people in users.values())


def test_family_devices_carry_several_peoples_user_ids(events: list[dict[str, Any]], truth: Truth) -> None:
    users = _owners(truth, "user_id")
    anons = _owners(truth, "anonymous_id")
    seen: defaultdict[str, set[str]] = defaultdict(set)
    for e in events:
        if e.get("userId") in users and "anonymousId" in e:
            seen[e["anonymousId"]].add(e["userId"])
    shared = [anon for anon, ids in seen.items() if len(ids) > 1]
    assert shared, "the over-merge trap is missing"
    for anon in shared:
        people = {next(iter(users[u])) for u in seen[anon]}
        assert len(people) > 1
        assert people <= anons[anon]


def test_some_devices_stay_anonymous_and_some_people_never_log_in(
    events: list[dict[str, Any]], truth: Truth, base: CustomerBase
) -> None:
    logged_in = {e["anonymousId"] for e in events if e.get("userId") and "anonymousId" in e}
    people = base.population.people
    devices = base.population.devices
    registered_but_anonymous = [
        d for d in devices if any(people[u].user_id for u in d.users) and not set(d.anonymous_ids) & logged_in
    ]
    assert registered_but_anonymous
    seen = {e.get("anonymousId") for e in events}
    never = [
        p
        for p in people
        if p.user_id is None and any(set(devices[d].anonymous_ids) & seen for d in p.devices)
    ]
    assert never


def test_people_have_one_to_four_devices_and_households_share_some(base: CustomerBase) -> None:
    people, devices = base.population.people, base.population.devices
    assert all(1 <= len(p.devices) <= 4 for p in people)
    assert {devices[d].profile.kind for p in people for d in p.devices} == {
        "desktop",
        "mobile_web",
        "app",
        "tv",
    }
    assert any(d.shared for d in devices)
    assert any(not any(devices[d].shared for d in p.devices) for p in people)


def test_junk_identifiers_appear_and_belong_to_nobody(events: list[dict[str, Any]], truth: Truth) -> None:
    junk = [e for e in events if e["type"] == "identify" and e.get("userId") in JUNK_USER_IDS]
    assert junk
    assert all(e.get("anonymousId") for e in junk)
    assert all(person == "" for kind, _, person in truth if kind.startswith("junk_"))
    assert all(person for kind, _, person in truth if not kind.startswith("junk_"))
