"""The golden record: folded trait names, survivorship policies, provenance, history, merges."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from tailor.profiles import view
from tailor.profiles.config import ProfilesConfig
from tailor.profiles.golden import TraitPolicy
from tests.profiles.store import T0, Store

DAY = timedelta(days=1)


def _identify(store: Store, user: str, days_ago: int, source: str = "src", **traits: object) -> None:
    store.send(
        {"type": "identify", "userId": user, "traits": traits, "timestamp": (T0 - days_ago * DAY).isoformat()}
    )


def test_most_recent_wins_and_keys_are_folded(store: Store) -> None:
    _identify(store, "ana", 10, firstName="Anna", email="ana@example.org")
    _identify(store, "ana", 5, **{"First Name": "Ana", "Surname": "Silva"})
    _identify(store, "ana", 20, first_name="Old")  # older: arrives late, does not win
    store.send(
        {"type": "track", "userId": "ana", "event": "X", "context": {"traits": {"plan": "gold", "empty": ""}}}
    )
    golden = store.golden("user_id:ana")
    assert golden == {"first_name": "Ana", "last_name": "Silva", "email": "ana@example.org", "plan": "gold"}
    traits = view.golden(store.rt.db, store.pid("user_id:ana"))
    assert traits["first_name"].observations == 3
    assert traits["first_name"].policy == "most_recent"
    history = view.history(
        store.rt.db, store.rt.identity_service.keys(store.pid("user_id:ana")), "first_name"
    )
    assert [h.value for h in history] == ["Old", "Anna", "Ana"]


def test_policies_per_trait(tmp_path: Path) -> None:
    store = Store(tmp_path / "d")
    try:
        store.rt.profiles.config = ProfilesConfig(
            traits={
                "name": TraitPolicy("first"),
                "city": TraitPolicy("most_frequent"),
                "phone": TraitPolicy("source_priority", ["crm", "src"]),
            }
        )
        _identify(store, "ana", 30, name="Ana Maria", city="Leeds")
        _identify(store, "ana", 20, name="Ana", city="York")
        _identify(store, "ana", 10, city="Leeds", phone="+441134960000")
        raw = {"type": "identify", "userId": "ana", "traits": {"phone": "+447700900123"}}
        rows, _ = store.rt.validator.validate("crm", [__import__("msgspec").json.encode(raw)], store.now)
        from tailor.collect.writer import Submission

        store.rt.writer.write(Submission("crm", "batch", store.now - 40 * DAY, rows, []))
        _identify(store, "ana", 1, phone="+441134960001")
        golden = store.golden("user_id:ana")
        assert golden["name"] == "Ana Maria"  # the first given
        assert golden["city"] == "Leeds"  # given twice
        assert golden["phone"] == "+447700900123"  # the CRM is trusted over later web values
    finally:
        store.close()


def test_a_merge_brings_both_sides_traits_together(store: Store) -> None:
    store.send(
        {
            "type": "identify",
            "anonymousId": "tablet",
            "traits": {"city": "Leeds"},
            "timestamp": (T0 - DAY).isoformat(),
        }
    )
    _identify(store, "ana", 2, first_name="Ana")
    assert "city" not in store.golden("user_id:ana")
    store.send({"type": "identify", "anonymousId": "tablet", "userId": "ana"})
    assert store.golden("user_id:ana") == {"first_name": "Ana", "city": "Leeds"}
    assert store.golden("anonymous_id:tablet") == store.golden("user_id:ana")
