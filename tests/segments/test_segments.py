"""Segment membership on small streams: conditions, entries and exits, time, merges and splits."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import duckdb
import msgspec

from tailor.store.database import DATABASE_FILE
from tests.profiles.store import T0, Store, track

DAY = timedelta(days=1)

FURNITURE_BROWSERS = {
    "name": "furniture_browsers",
    "condition": {
        "all": [
            {
                "event": "Product Viewed",
                "where": [{"property": "category", "op": "=", "value": "Furniture"}],
                "within": "30d",
            },
            {"not": {"event": "Order Completed", "within": "30d"}},
        ]
    },
}


def test_event_conditions_enter_and_exit_as_people_act(store: Store) -> None:
    store.define_many([FURNITURE_BROWSERS])
    store.send(
        track("ana", "Product Viewed", T0 - DAY, category="Furniture"),
        track("bob", "Product Viewed", T0 - DAY, category="Kids"),
        track("cy", "Product Viewed", T0 - 40 * DAY, category="Furniture"),
    )
    assert store.members("furniture_browsers") == {"ana"}
    store.send(track("ana", "Order Completed", total=300))
    assert store.members("furniture_browsers") == set()
    store.send(track("bob", "Product Viewed", category="Furniture"))
    assert store.members("furniture_browsers") == {"bob"}
    assert store.changes("furniture_browsers") == [
        ("ana", "entered", False),
        ("ana", "exited", False),
        ("bob", "entered", False),
    ]


def test_windows_expire_with_no_new_event_and_only_the_due_are_evaluated(store: Store) -> None:
    store.define_many([FURNITURE_BROWSERS])
    store.send(
        track("ana", "Product Viewed", T0 - 29 * DAY, category="Furniture"),
        track("bob", "Product Viewed", T0 - 10 * DAY, category="Furniture"),
        track("bob", "Order Completed", T0 - 20 * DAY),
    )
    assert store.members("furniture_browsers") == {"ana"}
    due = store.rt.db.execute("SELECT count(*) FROM profile_schedule WHERE next_check <= ?", [T0 + 2 * DAY])
    assert due[0][0] == 1  # ana's view leaves the window in a day; bob's order in 10 days
    store.tick(2 * DAY)
    assert store.members("furniture_browsers") == set()
    store.tick(9 * DAY)  # bob's order falls out of the 30 days; his view is still in them
    assert store.members("furniture_browsers") == {"bob"}
    assert [c[:2] for c in store.changes("furniture_browsers")] == [
        ("ana", "entered"),
        ("ana", "exited"),
        ("bob", "entered"),
    ]


def test_traits_computed_traits_other_segments_and_any(store: Store) -> None:
    store.define_many(
        [
            {"name": "orders", "aggregate": "count", "event": "Order Completed"},
            {"name": "last_order_at", "aggregate": "last_at", "event": "Order Completed"},
            {"name": "londoners", "condition": {"trait": "city", "op": "in", "value": ["London", "Leeds"]}},
            {"name": "repeat", "condition": {"computed": "orders", "op": ">=", "value": 2}},
            {
                "name": "lapsed",
                "condition": {"computed": "last_order_at", "op": "older_than", "value": "30d"},
            },
            {
                "name": "vip_or_local",
                "condition": {
                    "any": [
                        {"segment": "repeat"},
                        {"all": [{"segment": "londoners"}, {"not": {"segment": "lapsed"}}]},
                    ]
                },
            },
            {
                "name": "big_spenders",
                "condition": {
                    "event": "Order Completed",
                    "aggregate": "sum",
                    "of": "total",
                    "op": ">",
                    "value": 100,
                },
            },
        ]
    )
    store.send(
        {"type": "identify", "userId": "ana", "traits": {"city": "London"}},
        {"type": "identify", "userId": "bob", "traits": {"city": "Paris"}},
        track("bob", "Order Completed", T0 - 40 * DAY, total=80),
        track("bob", "Order Completed", T0 - 35 * DAY, total=30),
        track("ana", "Order Completed", T0 - 20 * DAY, total=20),
    )
    assert store.members("londoners") == {"ana"}
    assert store.members("repeat") == {"bob"}
    assert store.members("lapsed") == {"bob"}
    assert store.members("vip_or_local") == {"ana", "bob"}
    assert store.members("big_spenders") == {"bob"}
    store.tick(11 * DAY)  # ana's only order is now over 30 days old
    assert store.members("lapsed") == {"ana", "bob"}
    assert store.members("vip_or_local") == {"bob"}
    store.send({"type": "identify", "userId": "ana", "traits": {"city": "Leeds"}})
    assert store.members("londoners") == {"ana"}


def test_a_merge_and_a_split_move_memberships(store: Store) -> None:
    store.define_many(
        [
            {
                "name": "viewed_and_bought",
                "condition": {"all": [{"event": "Product Viewed"}, {"event": "Order Completed"}]},
            }
        ]
    )
    store.send(
        {"type": "track", "event": "Product Viewed", "anonymousId": "tablet"},
        track("ana", "Order Completed", total=10),
    )
    assert store.members("viewed_and_bought") == set()
    store.send({"type": "identify", "anonymousId": "tablet", "userId": "ana"})
    assert store.members("viewed_and_bought") == {"ana"}
    pid = store.pid("user_id:ana")
    store.rt.identity_service.split(pid, remove_edge=("anonymous_id:tablet", "user_id:ana"))
    store.tick()
    assert store.members("viewed_and_bought") == set()
    assert [c[1] for c in store.changes("viewed_and_bought")] == ["entered", "exited"]


def test_a_new_segment_is_back_filled_and_a_rebuild_records_no_change(store: Store) -> None:
    store.send(track("ana", "Order Completed"), track("bob", "Product Viewed"))
    store.define_many([{"name": "buyers", "condition": {"event": "Order Completed"}}])
    assert store.members("buyers") == {"ana"}
    assert store.changes("buyers") == [("ana", "entered", True)]
    store.rt.processor.rebuild()
    assert store.members("buyers") == {"ana"}
    assert store.changes("buyers") == [("ana", "entered", True)]
    store.rt.definitions.delete("segment", "buyers")
    assert store.changes("buyers")[-1] == ("ana", "exited", True)


def test_change_ids_of_an_older_store_continue_above_its_sequence(tmp_path: Path) -> None:
    store = Store(tmp_path / "data")
    store.define_many([{"name": "buyers", "condition": {"event": "Order Completed"}}])
    store.send(track("ana", "Order Completed"))
    (first,) = store.rt.db.execute("SELECT id FROM segment_changes")
    store.close()
    # As an older version left it: ids from a sequence that has issued up to 40 (the change with
    # the highest id was erased), no count, and an index on the memberships.
    db = duckdb.connect(str(tmp_path / "data" / DATABASE_FILE))
    db.execute("CREATE SEQUENCE segment_change_ids START 40")
    db.execute("SELECT nextval('segment_change_ids')")
    db.execute("DELETE FROM profile_meta WHERE key = 'last_change_id'")
    db.execute("CREATE INDEX segment_members_profile ON segment_members (profile_id)")
    db.close()
    store = Store(tmp_path / "data", reopen=True)
    try:
        store.send(track("bob", "Order Completed"))
        rows = store.rt.db.execute("SELECT id FROM segment_changes ORDER BY id")
        assert rows == [first, (41,)]
        assert store.rt.db.execute("SELECT * FROM duckdb_sequences()") == []
        assert (
            store.rt.db.execute("SELECT * FROM duckdb_indexes() WHERE table_name = 'segment_members'") == []
        )
        store.send(track("cy", "Order Completed"), track("dan", "Order Completed"))
        rows = store.rt.db.execute("SELECT id FROM segment_changes WHERE id > 41 ORDER BY id")
        assert rows == [(42,), (43,)]
    finally:
        store.close()


def test_a_segment_can_require_consent_and_an_unsubscribe_takes_people_out(store: Store) -> None:
    store.define_many(
        [
            {
                "name": "mailable_buyers",
                "condition": {
                    "all": [{"event": "Order Completed"}, {"consent": "email_marketing", "channel": "email"}]
                },
            }
        ]
    )
    store.send(
        {"type": "identify", "userId": "ana", "traits": {"consent": {"email_marketing": True}}},
        {"type": "identify", "userId": "bob", "traits": {"consent": {"email_marketing": False}}},
        track("ana", "Order Completed"),
        track("bob", "Order Completed"),
        track("cy", "Order Completed"),
    )
    assert store.members("mailable_buyers") == {"ana"}
    store.send(track("ana", "Unsubscribed", channel="email"))
    assert store.members("mailable_buyers") == set()
    assert [c[1] for c in store.changes("mailable_buyers")] == ["entered", "exited"]


def test_erasure_removes_the_person_from_every_profile_table(store: Store) -> None:
    store.define_many(
        [
            {"name": "orders", "aggregate": "count", "event": "Order Completed"},
            {"name": "buyers", "condition": {"event": "Order Completed"}},
        ]
    )
    store.send(
        {"type": "identify", "userId": "ana", "traits": {"email": "ana@example.org", "city": "Leeds"}},
        track("ana", "Order Completed"),
        track("bob", "Order Completed"),
    )
    pid = store.pid("user_id:ana")
    exported = store.rt.privacy.export("user_id:ana")
    sections = msgspec.to_builtins(exported)
    text = msgspec.json.encode(sections).decode()
    assert "profile_traits" in text
    assert "segment_members" in text
    store.rt.privacy.erase("user_id:ana", actor="test")
    db = store.rt.db
    for table in ("profile_facts", "trait_observations"):
        assert (
            db.execute(
                f"SELECT count(*) FROM {table} WHERE k IN (SELECT k FROM identity_nodes WHERE profile_id = ?)",
                [pid],
            )[0][0]
            == 0
        )
    for table in (
        "profile_traits",
        "profile_computed",
        "segment_members",
        "segment_changes",
        "profile_schedule",
    ):
        assert db.execute(f"SELECT count(*) FROM {table} WHERE profile_id = ?", [pid])[0][0] == 0, table
    assert store.members("buyers") == {"bob"}
    assert db.execute("SELECT count(*) FROM trait_observations WHERE text = 'ana@example.org'")[0][0] == 0


def test_people_due_between_batches_wait_for_the_tick_interval(store: Store) -> None:
    store.rt.profiles.config.tick_seconds = 60
    store.define_many(
        [
            {"name": "recent_buyers", "condition": {"event": "Order Completed", "within": "1d"}},
            {
                "name": "viewed_and_bought",
                "condition": {"all": [{"event": "Product Viewed"}, {"event": "Order Completed"}]},
            },
        ]
    )
    store.send(
        track("ana", "Order Completed", T0 - timedelta(hours=23, minutes=59, seconds=30), total=10),
        {"type": "track", "event": "Product Viewed", "anonymousId": "tablet"},
    )
    assert store.members("recent_buyers") == {"ana"}
    store.tick(timedelta(seconds=40))  # ana's order is now over a day old, but 40 s < 60 s
    assert store.members("recent_buyers") == {"ana"}
    # A micro-batch evaluates its people at once, and the people due with them.
    store.send({"type": "identify", "anonymousId": "tablet", "userId": "ana"})
    assert store.members("viewed_and_bought") == {"ana"}
    assert store.members("recent_buyers") == set()
    # Bob's order leaves the day 10 s after this batch evaluates him.
    store.send(track("bob", "Order Completed", store.now - timedelta(hours=23, minutes=59, seconds=50)))
    store.tick(timedelta(seconds=30))  # due, 30 s after the last evaluation: not yet
    assert store.members("recent_buyers") == {"bob"}
    store.tick(timedelta(seconds=30))  # 60 s after it
    assert store.members("recent_buyers") == set()
