"""The library of computed traits on the synthetic customer base, checked against values worked out in Python.

Tailor's identity resolution says which events are one person's (that is tested elsewhere); every
trait of the library is then recomputed here from those events' raw JSON, with no SQL, and must
agree for every person.
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import msgspec
import numpy as np
import pytest

from tailor.demo.synth import SynthConfig, generate
from tests.profiles.store import Store

NOW = datetime.fromisoformat("2026-11-02T09:00:00+00:00")
TV = re.compile(r".*(SmartTV|Web0S|Tizen|AFT|Roku|BRAVIA).*")
MOBILE = re.compile(r".*(Mobile|iPhone|Android).*")


@pytest.fixture(scope="module")
def evaluated(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Store, dict[str, list[dict[str, Any]]]]]:
    store = Store(tmp_path_factory.mktemp("library") / "data", library=True)
    store.now = NOW
    events = list(generate(SynthConfig(people=150, seed=11)).events())
    for i in range(0, len(events), 2000):
        store.send(*events[i : i + 2000], process=False)
    store.process()
    with store.rt.processor.exclusive() as cur:  # quantile thresholds from everyone's values
        store.rt.profiles.install(cur, store.rt.profiles.catalog, force=True)
    people: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for pid, seq, type_, event, name, source, ts, props, context in store.rt.db.execute(
        """SELECT n.profile_id, e.seq, e.type, e.event, e.name, e.source_id, e.timestamp, e.properties, e.context
        FROM events e JOIN identity_event_hubs h USING (seq) JOIN identity_nodes n ON n.k = h.k ORDER BY e.seq"""
    ):
        people[pid].append(
            {
                "seq": seq, "type": type_, "event": event, "name": name, "source": source, "ts": ts,
                "p": msgspec.json.decode(props) if props else {}, "c": msgspec.json.decode(context) if context else {},
            }
        )  # fmt: skip
    yield store, people
    store.close()


def _channel(e: dict[str, Any]) -> str:
    c = e["c"]
    if e["source"].startswith("import:"):
        return str(c["record"]["kind"])
    if (e["event"] or "").startswith("Email "):
        return "email"
    if (e["event"] or "").startswith("SMS "):
        return "sms"
    if "app" in c or "type" in c.get("device", {}):
        return "app"
    if "page" in c or e["type"] == "page":
        return "web"
    return str(c.get("channel", "server"))


def _device(e: dict[str, Any]) -> str | None:
    ua, device = e["c"].get("userAgent"), e["c"].get("device", {})
    if ua is not None and TV.fullmatch(ua):
        return "smart_tv"
    if "type" in device:
        return f"app_{device['type']}"
    if ua is not None:
        return "mobile_web" if MOBILE.fullmatch(ua) else "desktop_web"
    return None


def _expected(events: list[dict[str, Any]]) -> dict[str, Any]:
    orders = [e for e in events if e["event"] == "Order Completed"]
    totals = [float(e["p"]["total"]) for e in orders]
    recent = [e for e in orders if e["ts"] > NOW - timedelta(days=90)]
    last_order = max((e["ts"] for e in orders), default=None)
    adds = [e["ts"] for e in events if e["event"] == "Product Added"]
    viewed = {e["p"]["category"] for e in events if e["event"] == "Product Viewed" and "category" in e["p"]}
    shown = sum(e["event"] == "Recommendation Shown" for e in events)
    bought = {
        p["recommendation_id"] for e in orders for p in e["p"].get("products", []) if "recommendation_id" in p
    }
    views = sum(e["type"] in ("page", "screen") and e["ts"] > NOW - timedelta(days=90) for e in events)
    channels = Counter(_channel(e) for e in events)
    latest = {ch: max(e["ts"] for e in events if _channel(e) == ch) for ch in channels}
    active = [e for e in events if e["type"] in ("track", "page", "screen")]
    last_add = max(adds, default=None)
    revenue = sum(totals)
    return {
        "orders_lifetime": len(orders),
        "revenue_lifetime": revenue,
        "orders_90d": len(recent),
        "revenue_90d": sum(float(e["p"]["total"]) for e in recent),
        "average_order_value": revenue / len(orders) if orders else None,
        "purchase_threshold": float(np.percentile(totals, 90)) if totals else None,
        "days_since_last_order": None if last_order is None else (NOW - last_order) // timedelta(days=1),
        "categories_browsed": sorted(viewed) or None,
        "category_breadth": len(viewed),
        "recommendations_shown": shown,
        "recommendations_bought": len(bought),
        "cross_sell_acceptance": len(bought) / shown if shown else None,
        "views_90d": views,
        "high_touch_non_buyer": views >= 20 and not orders,
        "cart_abandoner": last_add is not None
        and (last_order is None or last_order < last_add)
        and last_add <= NOW - timedelta(hours=1),
        "devices_used": sorted({d for e in events if (d := _device(e)) is not None}) or None,
        "channels_used": sorted(channels),
        "preferred_channel": max(channels, key=lambda ch: (channels[ch], latest[ch], ch)),
        "last_seen_at": max((e["ts"] for e in active), default=None),
    }


def _same(got: Any, want: Any) -> bool:
    if isinstance(want, float) and got is not None:
        return math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-9)
    if isinstance(want, datetime):
        return got == want.isoformat()
    return bool(got == want)


def test_every_library_trait_matches_a_computation_in_python(
    evaluated: tuple[Store, dict[str, list[dict[str, Any]]]],
) -> None:
    store, people = evaluated
    assert len(people) > 100
    mismatches = []
    for pid, events in people.items():
        from tailor.profiles import view

        got = view.computed(store.rt.db, pid)
        for trait, want in _expected(events).items():
            if not _same(got[trait], want):
                mismatches.append(f"{pid} {trait}: Tailor {got[trait]!r}, Python {want!r}")
    assert not mismatches, "\n".join(mismatches[:20])
    buyers = sum(1 for events in people.values() if any(e["event"] == "Order Completed" for e in events))
    assert buyers > 20  # the checks above covered real buyers, not only empty profiles


def test_rfm_scores_are_quintiles_of_everyone(
    evaluated: tuple[Store, dict[str, list[dict[str, Any]]]],
) -> None:
    from tailor.profiles import view

    store, people = evaluated
    rows = {pid: view.computed(store.rt.db, pid) for pid in people}
    buyers = {pid: r for pid, r in rows.items() if r["orders_lifetime"] > 0}
    for trait, of, descending in (
        ("rfm_recency", "days_since_last_order", True),
        ("rfm_frequency", "orders_lifetime", False),
        ("rfm_monetary", "revenue_lifetime", False),
    ):
        values = np.array([r[of] for r in buyers.values()], dtype=float)
        thresholds = np.quantile(values, [0.2, 0.4, 0.6, 0.8])
        for pid, r in buyers.items():
            below = int((thresholds < r[of]).sum())
            assert r[trait] == (5 - below if descending else 1 + below), (pid, trait)
        assert all(r[trait] is None for r in rows.values() if r["orders_lifetime"] == 0)
        score = {
            pid: r["rfm_recency"] * 100 + r["rfm_frequency"] * 10 + r["rfm_monetary"]
            for pid, r in buyers.items()
        }
        assert all(rows[pid]["rfm_score"] == s for pid, s in score.items())


def test_the_golden_record_of_a_person_with_many_sources(
    evaluated: tuple[Store, dict[str, list[dict[str, Any]]]],
) -> None:
    store, _ = evaluated
    (pid, n), *_ = store.rt.db.execute(
        "SELECT profile_id, count(*) FROM profile_traits GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 1"
    )
    from tailor.profiles import view

    golden = view.golden(store.rt.db, pid)
    assert n == len(golden) >= 2
    for trait, value in golden.items():
        history = view.history(store.rt.db, store.rt.identity_service.keys(pid), trait)
        latest = max(history, key=lambda h: (h.at, h.seq))
        assert (value.value, value.seq) == (latest.value, latest.seq), trait  # most recent wins
        assert value.observations == len(history)
