"""Inbound webhooks: signed payloads mapped by JSON paths; bad signatures refused, bad items quarantined."""

from __future__ import annotations

import json

from starlette.testclient import TestClient

from tailor.connectors.declarations import save_declaration
from tailor.connectors.webhook_source import sign

SPEC = {
    "type": "webhook_source",
    "secret": "whsec",
    "mapping": {
        "items": "$.data",
        "event_path": "$.type",
        "id_path": "$.id",
        "timestamp_path": "$.created",
        "identifiers": {"email": "$.customer.email", "user_id": "$.customer.id"},
        "properties": {"total": "$.order.total", "currency": "$.order.currency"},
    },
}


def _post(client: TestClient, body: bytes, secret: str = "whsec") -> dict[str, object]:
    r = client.post("/v1/webhooks/shop", content=body, headers={"X-Tailor-Signature": sign(secret, body)})
    return {"status": r.status_code, **r.json()}


def test_signed_payload_becomes_events_and_bad_items_are_quarantined(client: TestClient) -> None:
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    save_declaration(runtime.data_dir, "shop", SPEC)
    items = [
        {
            "id": "ev1",
            "type": "Order Completed",
            "created": "2024-05-01T10:00:00Z",
            "customer": {"id": "u1", "email": "a@example.org"},
            "order": {"total": 12.5, "currency": "GBP"},
        },
        {"id": "ev2", "type": "Order Completed", "customer": {}},  # nobody
        {"id": "ev3", "type": "Refund", "created": "last week", "customer": {"email": "b@example.org"}},
        {
            "id": "ev4",
            "type": "Refund",
            "customer": {"id": "u4", "email": "b@example.org"},
            "order": {"total": 3},
        },
        # Segment's rule, applied by the collector's validation: a userId or an anonymousId.
        {"id": "ev5", "type": "Refund", "customer": {"email": "c@example.org"}},
    ]
    body = json.dumps({"data": items}).encode()
    answer = _post(client, body)
    assert answer["status"] == 200
    assert answer["stored"] == 2
    rejected = answer["rejected"]
    assert [r["index"] for r in rejected] == [1, 2, 4]  # type: ignore[index]
    assert "no identifier found at $.customer.email, $.customer.id" in rejected[0]["reason"]  # type: ignore[index]
    assert "'last week' is not an ISO 8601 timestamp" in rejected[1]["reason"]  # type: ignore[index]
    assert "needs a userId or an anonymousId" in rejected[2]["reason"]  # type: ignore[index]
    assert _post(client, body)["duplicates"] == 2  # the sender's retry stores nothing twice
    runtime.writer.flush()
    rows = runtime.db.execute(
        "SELECT user_id, event, properties, context FROM events WHERE source_id = 'webhook:shop' ORDER BY seq"
    )
    assert rows[0][:2] == ("u1", "Order Completed")
    assert json.loads(rows[0][2]) == {"total": 12.5, "currency": "GBP"}
    assert json.loads(rows[1][3])["externalIds"][0] == {
        "type": "email",
        "id": "b@example.org",
        "collection": "shop",
        "encoding": "none",
    }
    endpoints = {q.endpoint for q in runtime.events.quarantine()}
    assert endpoints == {"webhook:shop"}


def test_wrong_signature_unknown_hook_and_bad_json(client: TestClient) -> None:
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    save_declaration(runtime.data_dir, "shop", SPEC)
    body = b'{"data": []}'
    assert _post(client, body, secret="guess")["status"] == 401
    assert client.post("/v1/webhooks/shop", content=body).status_code == 401
    assert client.post("/v1/webhooks/nope", content=body).status_code == 404
    broken = _post(client, b"{not json")
    assert broken["status"] == 400
    assert "not JSON" in broken["rejected"][0]["reason"]  # type: ignore[index]
    empty = _post(client, body)
    assert empty["status"] == 400
    assert "holds no items" in empty["rejected"][0]["reason"]  # type: ignore[index]


def test_connectors_api_declares_and_lists(client: TestClient) -> None:
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    from tailor.keyring import Keyring

    del runtime
    token = client.app.state.runtime.keyring.add_admin_token("t")  # type: ignore[attr-defined]
    client.app.state.runtime.keys.refresh()  # type: ignore[attr-defined]
    admin = {"Authorization": f"Bearer {token}"}
    bad = client.put("/api/v1/connectors/shop", json={"type": "webhook_source"}, headers=admin)
    assert bad.status_code == 400
    assert "secret" in bad.json()["message"]
    ok = client.put("/api/v1/connectors/shop", json=SPEC, headers=admin)
    assert ok.status_code == 200
    assert ok.json()["type"] == "webhook_source"
    listed = client.get("/api/v1/connectors", headers=admin).json()["connectors"]
    assert [(c["name"], c["type"], c["last_run"]) for c in listed] == [("shop", "webhook_source", None)]
    assert client.post("/api/v1/connectors/shop/run", headers=admin).status_code == 400
    assert client.delete("/api/v1/connectors/shop", headers=admin).status_code == 200
    assert client.get("/api/v1/connectors", headers=admin).json()["connectors"] == []
    assert Keyring is not None
