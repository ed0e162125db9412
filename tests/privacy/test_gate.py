"""Consent at collection: events of people without analytics consent anonymised or refused, per source."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import tomli_w
from starlette.testclient import TestClient

from tailor.api import create_app
from tailor.datadir import init_data_dir
from tailor.keyring import KEYRING_FILE, Keyring
from tailor.privacy.gate import truncate_ip
from tailor.runtime import Runtime

DENY = {"consent": {"categoryPreferences": {"Analytics": False}}, "ip": "81.2.69.160"}


def _app(tmp_path: Path, privacy: dict[str, Any]) -> tuple[Runtime, TestClient, dict[str, str]]:
    path = tmp_path / "data"
    creds = init_data_dir(path, source_name="web")
    (path / "tailor.toml").write_text(tomli_w.dumps({"privacy": privacy}), "utf-8")
    keyring = Keyring(path / KEYRING_FILE)
    _, server_key = keyring.add_source("server")
    keyring.close()
    rt = Runtime(path)
    client = TestClient(create_app(rt))
    client.headers["X-Write-Key"] = creds.write_key
    return rt, client, {"X-Write-Key": server_key}


def _events(rt: Runtime) -> list[tuple[Any, ...]]:
    rt.writer.flush()
    return rt.db.execute("SELECT user_id, anonymous_id, traits, context, properties FROM events ORDER BY seq")


def test_anonymised_events_cannot_be_stitched(tmp_path: Path) -> None:
    rt, client, _ = _app(
        tmp_path, {"sources": {"web": {"analytics": "anonymise", "drop_properties": ["email"]}}}
    )
    with client:
        r = client.post(
            "/v1/batch",
            json={
                "batch": [
                    {
                        "type": "identify",
                        "userId": "ana",
                        "anonymousId": "laptop",
                        "traits": {"email": "ana@example.org"},
                        "context": DENY,
                    },
                    {
                        "type": "track",
                        "event": "Viewed",
                        "userId": "ana",
                        "anonymousId": "laptop",
                        "properties": {"sku": "A1", "email": "ana@example.org"},
                        "context": {**DENY, "device": {"id": "dev-1"}},
                    },
                    {"type": "alias", "userId": "ana", "previousId": "laptop", "context": DENY},
                ]
            },
        )
        assert r.status_code == 200, r.text
        rows = _events(rt)
        assert len(rows) == 2  # the alias, whose only content is a link, is refused
        for user_id, anonymous_id, traits, context, _ in rows:
            assert user_id is None
            assert traits is None
            assert anonymous_id.startswith("anon_")
            assert anonymous_id == rows[0][1]
            ctx = json.loads(context)
            assert ctx["ip"] == "81.2.69.0"
            assert ctx["anonymised"]
            assert "traits" not in ctx
            assert ctx["consent"]["categoryPreferences"] == {"Analytics": False}
        assert json.loads(rows[1][4]) == {"sku": "A1"}
        assert "id" not in json.loads(rows[1][3])["device"]
        rt.processor.run_once()
        assert (
            rt.db.execute("SELECT count(*) FROM identity_nodes WHERE type IN ('user_id', 'email')")[0][0] == 0
        )
        assert rt.privacy.gate.anonymised == 2
        assert rt.privacy.gate.refused == 1


def test_refuse_policy_and_recorded_denials(tmp_path: Path) -> None:
    rt, client, server = _app(
        tmp_path, {"sources": {"web": {"analytics": "refuse"}, "server": {"analytics": "keep"}}}
    )
    with client:
        # The account settings page, server-side: analytics denied for user bo.
        r = client.post(
            "/v1/identify",
            json={"userId": "bo", "anonymousId": "bo-laptop", "traits": {"consent": {"analytics": False}}},
            headers=server,
        )
        assert r.status_code == 200
        rt.processor.run_once()
        rt.privacy_scheduler.tick()
        assert client.post("/v1/track", json={"event": "Viewed", "userId": "bo"}).status_code == 200
        assert client.post("/v1/page", json={"anonymousId": "bo-laptop"}).status_code == 200
        assert client.post("/v1/page", json={"anonymousId": "someone-else"}).status_code == 200
        assert (
            client.post("/v1/track", json={"event": "Viewed", "userId": "bo"}, headers=server).status_code
            == 200
        )
        rows = _events(rt)
        assert [(u, a) for u, a, *_ in rows] == [("bo", "bo-laptop"), (None, "someone-else"), ("bo", None)]
        assert rt.privacy.gate.refused == 2


def test_opt_in_sources_need_a_grant(tmp_path: Path) -> None:
    rt, client, _ = _app(tmp_path, {"sources": {"web": {"model": "opt_in", "analytics": "anonymise"}}})
    grant = {"consent": {"categoryPreferences": {"Analytics": True}}}
    with client:
        client.post("/v1/page", json={"anonymousId": "v1"})
        client.post("/v1/page", json={"anonymousId": "v2", "context": grant})
        rt.processor.run_once()
        rt.privacy_scheduler.tick()
        client.post("/v1/page", json={"anonymousId": "v2"})  # granted before, recorded
        anonymous = [a for _, a, *_ in _events(rt)]
        assert anonymous[0].startswith("anon_")
        assert anonymous[1:] == ["v2", "v2"]


def test_ip_truncation() -> None:
    assert truncate_ip("81.2.69.160") == "81.2.69.0"
    assert truncate_ip("2001:db8:85a3::8a2e:370:7334") == "2001:db8:85a3::"
    assert truncate_ip("not an ip") is None
