"""Consent: every shape that carries it, the current consent through merges and splits, decisions."""

from __future__ import annotations

from typing import Any

from starlette.testclient import TestClient

from tailor.runtime import Runtime
from tests.conftest import DataDir


def _rt(client: TestClient) -> Runtime:
    runtime: Runtime = client.app.state.runtime  # type: ignore[attr-defined]
    return runtime


def _send(client: TestClient, *messages: dict[str, Any]) -> dict[str, Any]:
    r = client.post("/v1/batch", json={"batch": list(messages)})
    assert r.status_code == 200, r.text
    _rt(client).processor.run_once()
    body: dict[str, Any] = r.json()
    return body


def _current(client: TestClient, data_dir: DataDir, identifier: str) -> dict[tuple[str, str], str]:
    r = client.get("/api/v1/consents", params={"identifier": identifier}, headers=data_dir.admin)
    assert r.status_code == 200, r.text
    return {(c["purpose"], c["channel"]): c["status"] for c in r.json()["consent"]}


def test_every_shape_is_recorded_with_its_proof(client: TestClient, data_dir: DataDir) -> None:
    _send(
        client,
        {
            "type": "page",
            "anonymousId": "laptop",
            "context": {
                "consent": {
                    "categoryPreferences": {"Analytics": True, "Advertising": False, "Unmapped Vendor": True}
                }
            },
        },
        {
            "type": "identify",
            "anonymousId": "laptop",
            "userId": "ana",
            "traits": {
                "consent": {
                    "email_marketing": {"status": "granted", "channels": ["email"], "source": "signup_form"},
                    "sms_marketing": False,
                }
            },
        },
        {"type": "track", "event": "Unsubscribed", "userId": "ana", "properties": {"channel": "email"}},
    )
    current = _current(client, data_dir, "user_id:ana")
    assert current == {
        ("analytics", "*"): "granted",
        ("advertising", "*"): "denied",
        ("email_marketing", "email"): "denied",
        ("sms_marketing", "*"): "denied",
    }
    history = client.get(
        "/api/v1/consents", params={"identifier": "anonymous_id:laptop"}, headers=data_dir.admin
    )
    records = history.json()["history"]
    assert [(r["seq"], r["origin"], r["purpose"], r["status"]) for r in records] == [
        (1, "segment", "advertising", "denied"),
        (1, "segment", "analytics", "granted"),
        (2, "traits", "email_marketing", "granted"),
        (2, "traits", "sms_marketing", "denied"),
        (3, "unsubscribe", "email_marketing", "denied"),
    ]
    signup = next(r for r in records if r["origin"] == "traits" and r["purpose"] == "email_marketing")
    assert signup["detail"] == "signup_form"
    assert signup["legal_basis"] == "consent"
    assert signup["seq"] == 2
    assert signup["message_id"]


def test_repeated_segment_preferences_are_kept_once(client: TestClient, data_dir: DataDir) -> None:
    prefs = {"consent": {"categoryPreferences": {"Analytics": True}}}
    _send(client, *[{"type": "page", "anonymousId": "v", "context": prefs} for _ in range(5)])
    _send(client, {"type": "page", "anonymousId": "v", "context": prefs})
    history = client.get("/api/v1/consents", params={"identifier": "anonymous_id:v"}, headers=data_dir.admin)
    assert len(history.json()["history"]) == 1


def test_consent_follows_merges_and_splits(client: TestClient, data_dir: DataDir) -> None:
    _send(
        client,
        {"type": "track", "event": "Unsubscribed", "anonymousId": "tablet", "properties": {"channel": "sms"}},
    )
    _send(
        client,
        {
            "type": "identify",
            "anonymousId": "tablet",
            "userId": "bo",
            "traits": {"consent": {"analytics": True}},
        },
    )
    rt = _rt(client)
    pid = rt.identity_service.resolve("user_id:bo")
    assert rt.identity_service.resolve("anonymous_id:tablet") == pid
    assert _current(client, data_dir, "user_id:bo") == {
        ("sms_marketing", "sms"): "denied",
        ("analytics", "*"): "granted",
    }
    r = client.post(
        f"/api/v1/profiles/{pid}/identity/split",
        json={"block": "anonymous_id:tablet"},
        headers=data_dir.admin,
    )
    assert r.status_code == 200, r.text
    _send(client, {"type": "page", "userId": "bo"})  # the next batch picks up the split
    assert _current(client, data_dir, "user_id:bo") == {("analytics", "*"): "granted"}
    assert _current(client, data_dir, "anonymous_id:tablet") == {("sms_marketing", "sms"): "denied"}


def test_consent_for_decides_with_a_reason(client: TestClient, data_dir: DataDir) -> None:
    _send(
        client,
        {"type": "identify", "userId": "cy", "traits": {"consent": {"email_marketing": True}}},
        {"type": "track", "event": "Unsubscribed", "userId": "cy", "properties": {"channel": "email"}},
        {
            "type": "identify",
            "userId": "cy",
            "traits": {"consent": {"email_marketing": {"status": "granted", "channel": "push"}}},
        },
    )
    rt = _rt(client)
    pid = rt.identity_service.resolve("user_id:cy")
    email = rt.privacy.consent_for(pid, "email_marketing", "email")
    assert not email.allowed
    assert email.status == "denied"
    assert "unsubscribe" in email.reason
    push = rt.privacy.consent_for(pid, "email_marketing", "push")
    assert push.allowed
    assert push.record is not None
    assert push.record.channel == "push"
    sms = rt.privacy.consent_for(pid, "sms_marketing", "sms")
    assert not sms.allowed
    assert sms.status == "unknown"
    assert "explicit grant" in sms.reason
    analytics = rt.privacy.consent_for(pid, "analytics", "web")
    assert analytics.allowed
    assert analytics.status == "unknown"
    r = client.get(
        "/api/v1/consents/decision",
        params={"identifier": "user_id:cy", "purpose": "email_marketing", "channel": "email"},
        headers=data_dir.admin,
    )
    assert r.status_code == 200
    assert r.json()["allowed"] is False


def test_consent_api_records_and_rejects_clearly(client: TestClient, data_dir: DataDir) -> None:
    ok = client.post(
        "/api/v1/consents",
        json={
            "identifier": "email:Dee@Example.org",
            "purpose": "email_marketing",
            "status": "granted",
            "channel": "email",
            "source": "call centre",
            "legal_basis": "consent",
        },
        headers=data_dir.admin,
    )
    assert ok.status_code == 200, ok.text
    assert ok.json()["consent"][0]["origin"] == "api"
    assert _current(client, data_dir, "email:dee@example.org") == {("email_marketing", "email"): "granted"}
    bad = client.post(
        "/api/v1/consents",
        json={
            "identifier": "email:dee@example.org",
            "purpose": "telepathy",
            "status": "maybe",
            "legal_basis": "whim",
        },
        headers=data_dir.admin,
    )
    assert bad.status_code == 400
    paths = {e["path"] for e in bad.json()["errors"]}
    assert paths == {"$.purpose", "$.status", "$.legal_basis"}
    assert (
        client.post("/api/v1/consents", json={"identifier": "nocolon"}, headers=data_dir.admin).status_code
        == 400
    )
    assert client.post("/api/v1/consents", content=b"{", headers=data_dir.admin).status_code == 400
    unknown = client.get(
        "/api/v1/consents", params={"identifier": "email:zora@example.org"}, headers=data_dir.admin
    )
    assert unknown.status_code == 404
    decision = client.get(
        "/api/v1/consents/decision",
        params={"identifier": "email:dee@example.org", "purpose": "nope", "channel": "email"},
        headers=data_dir.admin,
    )
    assert decision.status_code == 400
    assert decision.json()["errors"][0]["path"] == "purpose"


def test_malformed_consent_at_collection_is_quarantined_with_paths(
    client: TestClient, data_dir: DataDir
) -> None:
    body = _send(
        client,
        {
            "type": "identify",
            "userId": "ed",
            "traits": {"consent": {"email_marketing": "yes please", "nope": True}},
        },
        {"type": "page", "userId": "ed", "context": {"consent": {"categoryPreferences": {"Analytics": "1"}}}},
        {"type": "page", "userId": "ed"},
    )
    assert body["stored"] == 1
    rejected = {r["index"]: {e["path"] for e in r["errors"]} for r in body["rejected"]}
    assert rejected == {
        0: {"$.traits.consent.email_marketing.status", "$.traits.consent.nope"},
        1: {"$.context.consent.categoryPreferences.Analytics"},
    }
    quarantined = client.get("/api/v1/quarantine", headers=data_dir.admin).json()["quarantine"]
    assert len(quarantined) == 2


def test_live_consent_equals_a_rebuild(client: TestClient, data_dir: DataDir) -> None:
    _send(
        client,
        {
            "type": "page",
            "anonymousId": "a1",
            "context": {"consent": {"categoryPreferences": {"Ads": False}}},
        },
    )
    _send(
        client,
        {
            "type": "identify",
            "anonymousId": "a1",
            "userId": "fi",
            "traits": {"consent": {"analytics": False}},
        },
    )
    _send(client, {"type": "track", "event": "Subscribed", "userId": "fi", "properties": {"channel": "sms"}})
    rt = _rt(client)
    query = "SELECT * FROM profile_consents ORDER BY ALL"
    live = rt.db.execute(query)
    history = rt.db.execute("SELECT * EXCLUDE (k) FROM consent_records ORDER BY ALL")
    rt.processor.rebuild()
    assert rt.db.execute(query) == live
    assert rt.db.execute("SELECT * EXCLUDE (k) FROM consent_records ORDER BY ALL") == history


def test_consent_import_quarantines_bad_rows(client: TestClient, data_dir: DataDir, tmp_path: Any) -> None:
    from tailor.privacy.imports import import_consent

    path = tmp_path / "consent.csv"
    path.write_text(
        "email,purpose,status,channel,timestamp\n"
        "gil@example.org,email_marketing,granted,email,2026-01-05T10:00:00+00:00\n"
        "not-an-email,email_marketing,granted,email,\n"
        "hal@example.org,flying,granted,email,\n"
        "hal@example.org,sms_marketing,denied,sms,yesterday\n",
        "utf-8",
    )
    result = import_consent(_rt(client), path)
    assert result.stored == 1
    assert result.quarantined == 3
    assert any("line 3.email" in e for e in result.errors)
    assert any("line 5.timestamp" in e for e in result.errors)
    assert _current(client, data_dir, "email:gil@example.org") == {("email_marketing", "email"): "granted"}
