"""Access control: scoped tokens, console users with sessions and CSRF, rate limits, the audit log."""

from __future__ import annotations

from pathlib import Path

import tomli_w
from starlette.testclient import TestClient

from tailor.api import create_app
from tailor.datadir import init_data_dir
from tailor.keyring import KEYRING_FILE, Keyring
from tailor.runtime import Runtime
from tests.conftest import DataDir


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_scopes_decide_what_a_token_may_do(client: TestClient, data_dir: DataDir) -> None:
    made = client.post("/api/v1/tokens", json={"name": "analyst", "scopes": "read"}, headers=data_dir.admin)
    assert made.status_code == 200, made.text
    analyst = _bearer(made.json()["token"])
    assert client.get("/api/v1/stats", headers=analyst).status_code == 200
    for method, path, body in (
        ("post", "/api/v1/privacy/erase", {"identifier": "user_id:x"}),
        ("post", "/api/v1/tokens", {"name": "x"}),
        ("post", "/api/v1/quarantine/1/discard", None),
        ("get", "/api/v1/audit", None),
    ):
        r = client.request(method, path, json=body, headers=analyst)
        assert r.status_code == 403, (path, r.text)
        assert "scope" in r.json()["message"]
    privacy = _bearer(
        client.post(
            "/api/v1/tokens", json={"name": "dpo", "scopes": "privacy"}, headers=data_dir.admin
        ).json()["token"]
    )
    assert (
        client.post("/api/v1/privacy/erase", json={"identifier": "user_id:x"}, headers=privacy).status_code
        == 404
    )
    bad = client.post("/api/v1/tokens", json={"name": "x", "scopes": "root"}, headers=data_dir.admin)
    assert bad.status_code == 400
    assert "unknown scope" in bad.json()["message"]
    # Revocation takes effect at once; the init token (admin) keeps every right.
    prefix = made.json()["token"][:8]
    assert (
        client.post("/api/v1/tokens/revoke", json={"token": prefix}, headers=data_dir.admin).status_code
        == 200
    )
    assert client.get("/api/v1/stats", headers=analyst).status_code == 401
    listed = client.get("/api/v1/tokens", headers=data_dir.admin).json()["tokens"]
    assert {t["name"]: t["revoked"] for t in listed} == {"admin": False, "analyst": True, "dpo": False}
    assert all("token" not in t for t in listed)


def test_console_sessions_need_the_csrf_token(client: TestClient, data_dir: DataDir) -> None:
    made = client.post(
        "/api/v1/users",
        json={"username": "mo", "password": "correct horse battery", "scopes": "read,privacy"},
        headers=data_dir.admin,
    )
    assert made.status_code == 200, made.text
    assert (
        client.post(
            "/api/v1/users", json={"username": "x", "password": "short"}, headers=data_dir.admin
        ).status_code
        == 400
    )
    wrong = client.post("/api/v1/sessions", json={"username": "mo", "password": "wrong password!!"})
    assert wrong.status_code == 401
    assert (
        client.post("/api/v1/sessions", json={"username": "nobody", "password": "whatever12345"}).status_code
        == 401
    )
    signed = client.post("/api/v1/sessions", json={"username": "mo", "password": "correct horse battery"})
    assert signed.status_code == 200
    csrf = signed.json()["csrf_token"]
    assert "httponly" in signed.headers["set-cookie"].lower()
    assert client.get("/api/v1/sessions/current").json() == {
        "kind": "user",
        "name": "mo",
        "scopes": ["privacy", "read"],
    }
    # An unsafe request without the CSRF token (what a forged cross-site form would send) is refused.
    forged = client.post("/api/v1/privacy/erase", json={"identifier": "user_id:x"})
    assert forged.status_code == 403
    assert forged.json()["code"] == "csrf"
    ok = client.post(
        "/api/v1/privacy/erase", json={"identifier": "user_id:x"}, headers={"X-CSRF-Token": csrf}
    )
    assert ok.status_code == 404  # authorised; there is no such person
    assert client.get("/api/v1/audit").status_code == 403  # mo is not an admin
    assert client.delete("/api/v1/sessions/current").status_code == 403
    assert client.delete("/api/v1/sessions/current", headers={"X-CSRF-Token": csrf}).status_code == 200
    client.cookies.clear()
    assert client.get("/api/v1/sessions/current").status_code == 401


def test_rate_limits_answer_429_with_retry_after(tmp_path: Path) -> None:
    path = tmp_path / "data"
    creds = init_data_dir(path)
    limits = {"write_key_rate": 1, "write_key_burst": 3, "token_rate": 1, "token_burst": 2}
    (path / "tailor.toml").write_text(tomli_w.dumps({"access": limits}), "utf-8")
    with TestClient(create_app(Runtime(path))) as client:
        answers = [
            client.post(
                "/v1/page", json={"anonymousId": "a"}, headers={"X-Write-Key": creds.write_key}
            ).status_code
            for _ in range(5)
        ]
        assert answers[:3] == [200, 200, 200]
        assert answers[3] == 429
        limited = client.post("/v1/page", json={"anonymousId": "a"}, headers={"X-Write-Key": creds.write_key})
        assert int(limited.headers["retry-after"]) >= 1
        admin = _bearer(creds.admin_token)
        statuses = [client.get("/api/v1/stats", headers=admin).status_code for _ in range(4)]
        assert statuses[:2] == [200, 200]
        assert 429 in statuses[2:]


def test_write_keys_only_write_their_own_source(client: TestClient, data_dir: DataDir) -> None:
    keyring = Keyring(data_dir.path / KEYRING_FILE)
    crm_id, crm_key = keyring.add_source("crm")
    keyring.close()
    runtime: Runtime = client.app.state.runtime  # type: ignore[attr-defined]
    runtime.keys.refresh()
    # The header key wins over a body key of another source.
    r = client.post("/v1/track", json={"event": "E", "userId": "u", "writeKey": crm_key})
    assert r.status_code == 200
    r = client.post("/v1/track", json={"event": "E", "userId": "u"}, headers={"X-Write-Key": crm_key})
    assert r.status_code == 200
    runtime.writer.flush()
    sources = [s for (s,) in runtime.db.execute("SELECT source_id FROM events ORDER BY seq")]
    assert sources == [data_dir.creds.source_id, crm_id]


def test_every_admin_action_is_audited_without_personal_data(client: TestClient, data_dir: DataDir) -> None:
    client.post("/v1/identify", json={"userId": "u1", "traits": {"email": "ivy@example.org"}})
    client.app.state.runtime.processor.run_once()  # type: ignore[attr-defined]
    client.get("/api/v1/profiles", params={"identifier": "email:ivy@example.org"}, headers=data_dir.admin)
    client.post("/api/v1/privacy/erase", json={"identifier": "email:ivy@example.org"}, headers=data_dir.admin)
    reader = client.post(
        "/api/v1/tokens", json={"name": "r", "scopes": "read"}, headers=data_dir.admin
    ).json()["token"]
    client.post("/api/v1/privacy/erase", json={"identifier": "user_id:u1"}, headers=_bearer(reader))
    entries = client.get("/api/v1/audit", headers=data_dir.admin).json()["entries"]
    actions = [(e["actor"], e["action"], e["status"]) for e in reversed(entries)]
    assert actions[:4] == [
        ("token:admin", "GET /api/v1/profiles", 200),
        ("token:admin", "POST /api/v1/privacy/erase", 200),
        ("token:admin", "POST /api/v1/tokens", 200),
        ("token:r", "POST /api/v1/privacy/erase", 403),
    ]
    assert "ivy" not in str(entries)


def test_write_keys_can_be_rotated_and_revoked_without_a_restart(
    client: TestClient, data_dir: DataDir
) -> None:
    keyring = Keyring(data_dir.path / KEYRING_FILE)
    runtime: Runtime = client.app.state.runtime  # type: ignore[attr-defined]
    old = data_dir.creds.write_key
    new = keyring.rotate_key("default", grace_s=3600)
    runtime.keys.refresh()
    for key in (old, new):
        assert (
            client.post("/v1/page", json={"anonymousId": "a"}, headers={"X-Write-Key": key}).status_code
            == 200
        )
    assert keyring.revoke_keys("default") == 2
    runtime.keys.refresh()
    for key in (old, new):
        assert (
            client.post("/v1/page", json={"anonymousId": "a"}, headers={"X-Write-Key": key}).status_code
            == 401
        )
    keyring.close()
