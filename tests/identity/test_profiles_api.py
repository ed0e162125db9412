"""The profile API over a live app: lookup by any identifier, explanations, splits that hold in rebuilds."""

from __future__ import annotations

from typing import Any

from starlette.testclient import TestClient

from tailor.runtime import Runtime
from tests.conftest import DataDir


def _send(client: TestClient, *messages: dict[str, Any]) -> None:
    r = client.post("/v1/batch", json={"batch": list(messages)})
    assert r.status_code == 200, r.text
    runtime: Runtime = client.app.state.runtime  # type: ignore[attr-defined]
    runtime.processor.run_once()


def _family(client: TestClient) -> None:
    _send(
        client,
        {
            "type": "page",
            "anonymousId": "laptop",
            "context": {"userAgent": "Mozilla/5.0 (X11; Linux x86_64)"},
        },
        {
            "type": "identify",
            "anonymousId": "laptop",
            "userId": "ana-1",
            "traits": {"email": "Ana@Example.org"},
        },
        {
            "type": "screen",
            "name": "Home",
            "userId": "ana-1",
            "context": {
                "device": {"id": "ana-phone", "type": "ios", "model": "iPhone15,2"},
                "app": {"name": "x"},
            },
        },
        {
            "type": "track",
            "event": "Email Opened",
            "anonymousId": "mailer",
            "context": {"traits": {"email": "ana@example.org"}},
        },
        {"type": "identify", "anonymousId": "laptop", "traits": {"first_name": "Ana", "plan": "gold"}},
    )


def test_lookup_by_any_identifier_returns_the_unified_profile(client: TestClient, data_dir: DataDir) -> None:
    _family(client)
    by_email = client.get(
        "/api/v1/profiles", params={"identifier": "email: ANA@example.org "}, headers=data_dir.admin
    )
    assert by_email.status_code == 200, by_email.text
    profile = by_email.json()
    for identifier in ("user_id:ana-1", "anonymous_id:laptop", "device_id:ana-phone", "anonymous_id:mailer"):
        r = client.get("/api/v1/profiles", params={"identifier": identifier}, headers=data_dir.admin)
        assert r.json()["profile_id"] == profile["profile_id"], identifier
    ids = {(i["type"], i["value"]) for i in profile["identifiers"]}
    assert ids == {
        ("anonymous_id", "laptop"),
        ("user_id", "ana-1"),
        ("email", "ana@example.org"),
        ("device_id", "ana-phone"),
        ("anonymous_id", "mailer"),
    }
    assert profile["events"] == 5
    assert profile["channels"] == {"web": 1, "app": 1, "email": 1, "server": 2}
    kinds = {(d["kind"], d["id"]) for d in profile["devices"]}
    assert kinds == {("desktop_web", "laptop"), ("app_ios", "ana-phone")}
    assert profile["traits"]["plan"]["value"] == "gold"
    # The golden record keeps the email given last: the mailer's context.traits, after the identify.
    assert profile["traits"]["email"]["value"] == "ana@example.org"
    assert profile["traits"]["email"]["observations"] == 2
    assert profile["first_seen"] <= profile["last_seen"]


def test_lookup_errors_are_clear(client: TestClient, data_dir: DataDir) -> None:
    _family(client)
    cases = [
        ({}, 400, "identifier=TYPE:VALUE is required"),
        ({"identifier": "ana@example.org"}, 400, "must be TYPE:VALUE"),
        ({"identifier": "shoe_size:42"}, 400, "unknown identifier type 'shoe_size'"),
        ({"identifier": "email:null"}, 400, "blocked"),
        ({"identifier": "email:bob@example.org"}, 404, "no profile holds email 'bob@example.org'"),
    ]
    for params, status, message in cases:
        r = client.get("/api/v1/profiles", params=params, headers=data_dir.admin)
        assert r.status_code == status, (params, r.text)
        assert message in r.json()["message"], (params, r.text)
    assert client.get("/api/v1/profiles", params={"identifier": "user_id:ana-1"}).status_code == 401


def test_explain_shows_every_edge_with_its_evidence(client: TestClient, data_dir: DataDir) -> None:
    _send(
        client,
        {"type": "identify", "userId": "mum", "anonymousId": "ipad", "messageId": "m-1"},
        {"type": "identify", "userId": "son", "anonymousId": "ipad", "messageId": "m-2"},
        {"type": "identify", "userId": "mum", "anonymousId": "mum-phone", "messageId": "m-3"},
    )
    pid = client.get("/api/v1/profiles", params={"identifier": "user_id:mum"}, headers=data_dir.admin).json()[
        "profile_id"
    ]
    r = client.get(f"/api/v1/profiles/{pid}/identity", headers=data_dir.admin)
    assert r.status_code == 200, r.text
    edges = {(e["a"]["value"], e["b"]["value"]): e for e in r.json()["edges"]}
    assert edges["ipad", "mum"]["linking"] is False
    assert edges["ipad", "mum"]["rule"] == "shared_device"
    assert "anonymous_id ipad was seen with 2 user ids" in edges["ipad", "mum"]["reason"]
    assert edges["mum-phone", "mum"]["linking"] is True
    assert edges["mum-phone", "mum"]["evidence"]["message_id"] == "m-3"
    assert edges["mum-phone", "mum"]["evidence"]["kind"] == "identify"
    assert client.get("/api/v1/profiles/prof_nope/identity", headers=data_dir.admin).status_code == 404


def test_a_wrong_merge_is_split_and_stays_split_through_a_rebuild(
    client: TestClient, data_dir: DataDir
) -> None:
    # Two people typed the same shared mailbox: the graph joins them through it.
    _send(
        client,
        {"type": "identify", "anonymousId": "a-1", "traits": {"email": "family@example.org"}},
        {"type": "identify", "anonymousId": "b-1", "traits": {"email": "family@example.org"}},
    )
    admin = data_dir.admin
    pid = client.get("/api/v1/profiles", params={"identifier": "anonymous_id:a-1"}, headers=admin).json()[
        "profile_id"
    ]
    other = client.get("/api/v1/profiles", params={"identifier": "anonymous_id:b-1"}, headers=admin).json()
    assert other["profile_id"] == pid
    r = client.post(
        f"/api/v1/profiles/{pid}/identity/split",
        json={"block": "email:family@example.org", "note": "shared family mailbox"},
        headers=admin,
    )
    assert r.status_code == 200, r.text
    result = r.json()
    assert len(result["profiles"]) == 3  # a-1, b-1 and the mailbox each on their own
    a = client.get("/api/v1/profiles", params={"identifier": "anonymous_id:a-1"}, headers=admin).json()
    b = client.get("/api/v1/profiles", params={"identifier": "anonymous_id:b-1"}, headers=admin).json()
    assert a["profile_id"] != b["profile_id"]
    assert (a["events"], b["events"]) == (1, 1)  # each event follows its own profile
    explained = client.get(f"/api/v1/profiles/{a['profile_id']}/identity", headers=admin).json()
    assert [e["rule"] for e in explained["edges"]] == ["split"]
    assert "shared family mailbox" in explained["edges"][0]["reason"]
    assert [o["action"] for o in explained["overrides"]] == ["block"]
    assert any(c["change"] == "split" for c in explained["changes"])
    # New evidence through the blocked mailbox links nothing either, and a rebuild keeps the split.
    _send(client, {"type": "identify", "anonymousId": "c-1", "traits": {"email": "family@example.org"}})
    runtime: Runtime = client.app.state.runtime  # type: ignore[attr-defined]
    runtime.processor.rebuild()
    ids = [
        client.get("/api/v1/profiles", params={"identifier": f"anonymous_id:{x}"}, headers=admin).json()[
            "profile_id"
        ]
        for x in ("a-1", "b-1", "c-1")
    ]
    assert len(set(ids)) == 3


def test_split_by_removing_one_edge(client: TestClient, data_dir: DataDir) -> None:
    _send(
        client,
        {"type": "identify", "userId": "u1", "anonymousId": "kiosk", "traits": {"email": "u1@example.org"}},
    )
    admin = data_dir.admin
    pid = client.get("/api/v1/profiles", params={"identifier": "user_id:u1"}, headers=admin).json()[
        "profile_id"
    ]
    bad = client.post(
        f"/api/v1/profiles/{pid}/identity/split",
        json={"remove_edge": ["user_id:u1", "email:zed@example.org"]},
        headers=admin,
    )
    assert bad.status_code == 400
    assert "does not hold" in bad.json()["message"]
    both = client.post(
        f"/api/v1/profiles/{pid}/identity/split",
        json={"block": "user_id:u1", "remove_edge": []},
        headers=admin,
    )
    assert both.status_code == 400
    r = client.post(
        f"/api/v1/profiles/{pid}/identity/split",
        json={"remove_edge": ["anonymous_id:kiosk", "user_id:u1"]},
        headers=admin,
    )
    assert r.status_code == 200, r.text
    kiosk = client.get("/api/v1/profiles", params={"identifier": "anonymous_id:kiosk"}, headers=admin).json()
    email = client.get(
        "/api/v1/profiles", params={"identifier": "email:u1@example.org"}, headers=admin
    ).json()
    assert kiosk["profile_id"] != email["profile_id"]
    assert {i["value"] for i in email["identifiers"]} == {"u1", "u1@example.org"}
    listed = client.get("/api/v1/identity/overrides", headers=admin).json()["overrides"]
    assert [(o["action"], o["a"], o["b"]) for o in listed] == [
        ("remove_edge", "anonymous_id:kiosk", "user_id:u1")
    ]


def test_an_absorbed_profile_id_still_resolves(client: TestClient, data_dir: DataDir) -> None:
    _send(client, {"type": "page", "anonymousId": "laptop"}, {"type": "page", "anonymousId": "phone"})
    admin = data_dir.admin
    phone = client.get("/api/v1/profiles", params={"identifier": "anonymous_id:phone"}, headers=admin).json()
    _send(
        client,
        {"type": "identify", "userId": "u", "anonymousId": "laptop"},
        {"type": "identify", "userId": "u", "anonymousId": "phone"},
    )
    merged = client.get(f"/api/v1/profiles/{phone['profile_id']}", headers=admin).json()
    assert merged["profile_id"] != phone["profile_id"]
    assert phone["profile_id"] in merged["aliases"]
    changes = client.get(f"/api/v1/profiles/{merged['profile_id']}/identity", headers=admin).json()["changes"]
    assert [(c["change"], c["other_id"]) for c in changes] == [("merged", phone["profile_id"])]
