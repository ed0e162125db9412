"""Property: after any stream of events, merges, splits and clock moves, the live state equals a rebuild."""

from __future__ import annotations

import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.profiles.store import Store

DAY = timedelta(days=1)
DEFINITIONS: list[dict[str, Any]] = [
    {"name": "orders", "aggregate": "count", "event": "Order Completed"},
    {"name": "spent_20d", "aggregate": "sum", "of": "total", "event": "Order Completed", "within": "20d"},
    {"name": "categories", "aggregate": "distinct", "of": "category", "event": "Product Viewed"},
    {
        "name": "favourite",
        "aggregate": "most_frequent",
        "of": "category",
        "event": "Product Viewed",
        "within": "30d",
    },
    {"name": "last_order_at", "aggregate": "last_at", "event": "Order Completed"},
    {"name": "by_category", "aggregate": "count", "by": "category", "within": "15d"},
    {"name": "days_quiet", "expression": "days_since(last_order_at)"},
    {"name": "recent", "expression": "within(last_order_at, '10d') AND orders > 0"},
    {"name": "viewers", "condition": {"event": "Product Viewed", "within": "10d"}},
    {
        "name": "browsing_not_buying",
        "condition": {
            "all": [
                {
                    "event": "Product Viewed",
                    "where": [{"property": "category", "op": "=", "value": "a"}],
                    "within": "25d",
                },
                {"not": {"event": "Order Completed", "within": "12d"}},
            ]
        },
    },
    {"name": "city_x", "condition": {"trait": "city", "op": "=", "value": "x"}},
    {
        "name": "quiet",
        "condition": {"any": [{"computed": "days_quiet", "op": ">", "value": 5}, {"segment": "city_x"}]},
    },
    {"name": "lapsed", "condition": {"computed": "last_order_at", "op": "older_than", "value": "7d"}},
]

_who = st.tuples(
    st.sampled_from(["u0", "u1", "u2", None]), st.sampled_from(["a0", "a1", "a2", "a3", None])
).filter(lambda w: w != (None, None))
_message = st.one_of(
    st.builds(lambda w, c, d: ("view", w, c, d), _who, st.sampled_from(["a", "b", "c"]), st.integers(0, 40)),
    st.builds(lambda w, t, d: ("order", w, t, d), _who, st.integers(1, 100), st.integers(0, 40)),
    st.builds(lambda w, c, d: ("identify", w, c, d), _who, st.sampled_from(["x", "y"]), st.integers(0, 40)),
)
_step = st.one_of(
    st.lists(_message, min_size=1, max_size=6).map(lambda ms: ("send", ms)),
    st.integers(0, 15).map(lambda days: ("wait", days)),
    st.just(("split", None)),
)


def _message_body(
    kind: str, who: tuple[str | None, str | None], value: Any, days_ago: int, now: Any
) -> dict[str, Any]:
    user, anon = who
    body: dict[str, Any] = {"timestamp": (now - days_ago * DAY).isoformat()}
    if user:
        body["userId"] = user
    if anon:
        body["anonymousId"] = anon
    if kind == "view":
        return {**body, "type": "track", "event": "Product Viewed", "properties": {"category": value}}
    if kind == "order":
        return {**body, "type": "track", "event": "Order Completed", "properties": {"total": value}}
    return {**body, "type": "identify", "traits": {"city": value}}


def _state(store: Store) -> dict[str, list[str]]:
    db = store.rt.db
    columns = [
        c
        for (c,) in db.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'profile_computed'"
        )
    ]
    select = ", ".join(f'"{c}"' for c in columns)
    return {
        "traits": sorted(
            map(repr, db.execute("SELECT profile_id, trait, value, source_id, seq FROM profile_traits"))
        ),
        "computed": sorted(map(repr, db.execute(f"SELECT {select} FROM profile_computed"))),
        "members": sorted(map(repr, db.execute("SELECT segment, profile_id FROM segment_members"))),
        "schedule": sorted(map(repr, db.execute("SELECT * FROM profile_schedule"))),
    }


def _split_one(store: Store) -> None:
    rows = store.rt.db.execute(
        """SELECT a_type || ':' || a_value, b_type || ':' || b_value, n.profile_id FROM identity_edges e
        JOIN identity_nodes n ON n.k = e.a WHERE e.linking ORDER BY e.seq LIMIT 1"""
    )
    if rows:
        a, b, pid = rows[0]
        store.rt.identity_service.split(pid, remove_edge=(a, b))


@settings(max_examples=12, deadline=None)
@given(st.lists(_step, min_size=1, max_size=8))
def test_live_state_equals_a_rebuild(steps: list[tuple[str, Any]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "data")
        try:
            store.define_many(DEFINITIONS)
            for kind, arg in steps:
                if kind == "send":
                    store.send(*(_message_body(m[0], m[1], m[2], m[3], store.now) for m in arg))
                elif kind == "wait":
                    store.tick(arg * DAY)
                else:
                    _split_one(store)
                    store.tick()
            store.tick(timedelta(seconds=1))
            live = _state(store)
            store.rt.processor.rebuild()
            rebuilt = _state(store)
            for key in live:
                assert live[key] == rebuilt[key], key
        finally:
            store.close()
