"""Access export and erasure of one person across every merged identity; tombstones and audit."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from tailor.api import create_app
from tailor.config import StoreConfig, TailorConfig
from tailor.datadir import init_data_dir
from tailor.runtime import Runtime
from tests.conftest import DataDir

ANA_EMAIL = "Ana.Fernandes@Example.org"
ANA_PHONE = "07911 123456"


def _rt(client: TestClient) -> Runtime:
    runtime: Runtime = client.app.state.runtime  # type: ignore[attr-defined]
    return runtime


def _ana(client: TestClient, others: int = 20) -> None:
    """Ana on a laptop, a phone app and by email (three identities merged), plus other people."""
    batch: list[dict[str, Any]] = [
        {"type": "page", "anonymousId": "laptop-ana", "name": "Home", "context": {"ip": "81.2.69.160"}},
        {
            "type": "identify",
            "anonymousId": "laptop-ana",
            "userId": "ana-7",
            "traits": {
                "email": ANA_EMAIL,
                "phone": ANA_PHONE,
                "first_name": "Ana",
                "consent": {"email_marketing": True},
            },
        },
        {
            "type": "screen",
            "name": "Basket",
            "userId": "ana-7",
            "context": {"device": {"id": "ana-iphone", "type": "ios"}},
        },
        {
            "type": "track",
            "event": "Email Opened",
            "anonymousId": "mailer-1",
            "context": {"traits": {"email": "ana.fernandes@example.org"}},
        },
        {"type": "identify", "userId": "ana-7", "traits": {"first_name": "Ana Maria"}},
    ]
    batch += [
        {"type": "identify", "userId": f"other-{i}", "traits": {"email": f"other{i}@example.org"}}
        for i in range(others)
    ]
    r = client.post("/v1/batch", json={"batch": batch})
    assert r.status_code == 200, r.text
    # A message of hers that failed validation sits in quarantine.
    bad = client.post("/v1/track", json={"userId": "ana-7", "properties": {"email": ANA_EMAIL}})
    assert bad.status_code == 400
    _rt(client).processor.run_once()


def test_export_holds_everything_about_the_person(client: TestClient, data_dir: DataDir) -> None:
    _ana(client)
    r = client.post(
        "/api/v1/privacy/export", json={"identifier": "phone:+447911123456"}, headers=data_dir.admin
    )
    assert r.status_code == 200, r.text
    doc = r.json()
    ids = {(i["type"], i["value"]) for i in doc["identifiers"]}
    assert ids >= {
        ("user_id", "ana-7"),
        ("anonymous_id", "laptop-ana"),
        ("device_id", "ana-iphone"),
        ("anonymous_id", "mailer-1"),
        ("email", "ana.fernandes@example.org"),
        ("phone", "+447911123456"),
    }
    assert doc["counts"]["events"] == 5
    assert doc["counts"]["quarantine"] == 1
    assert {e["seq"] for e in doc["sections"]["events"]} == {1, 2, 3, 4, 5}
    assert all("other" not in json.dumps(e) for e in doc["sections"]["events"])
    names = [t for t in doc["traits"] if t["trait"] == "first_name"]
    assert [(t["value"], t["seq"]) for t in names] == [("Ana", 2), ("Ana Maria", 5)]
    assert doc["consent"][0]["purpose"] == "email_marketing"
    for section in ("identity_nodes", "identity_edges", "identity_event_hubs", "consent_records"):
        assert doc["counts"][section] > 0, section
    z = client.post(
        "/api/v1/privacy/export",
        json={"identifier": "user_id:ana-7", "format": "zip"},
        headers=data_dir.admin,
    )
    assert z.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(z.content)) as archive:
        assert "person.json" in archive.namelist()
        lines = archive.read("events.jsonl").decode().splitlines()
        assert len(lines) == 5
        assert json.loads(lines[0])["seq"] == 1


def test_erasure_removes_every_identity_and_leaves_a_tombstone(client: TestClient, data_dir: DataDir) -> None:
    _ana(client)
    rt = _rt(client)
    before = rt.db.execute("SELECT count(*) FROM events")[0][0]
    r = client.post(
        "/api/v1/privacy/erase", json={"identifier": "device_id:ana-iphone"}, headers=data_dir.admin
    )
    assert r.status_code == 200, r.text
    result = r.json()
    assert result["rows_deleted"]["events"] == 5
    assert result["rows_deleted"]["quarantine"] == 1
    assert rt.db.execute("SELECT count(*) FROM events")[0][0] == before - 5
    for identifier in ("user_id:ana-7", "email:ana.fernandes@example.org", "anonymous_id:mailer-1"):
        again = client.post("/api/v1/privacy/erase", json={"identifier": identifier}, headers=data_dir.admin)
        assert again.status_code == 409, again.text
        assert "was erased" in again.json()["message"]
        assert result["erasure_id"] in again.json()["message"]
        assert (
            client.get(
                "/api/v1/profiles", params={"identifier": identifier}, headers=data_dir.admin
            ).status_code
            == 404
        )
    unknown = client.post("/api/v1/privacy/erase", json={"identifier": "user_id:zed"}, headers=data_dir.admin)
    assert unknown.status_code == 404
    assert (
        client.post("/api/v1/privacy/erase", json={"identifier": "bogus"}, headers=data_dir.admin).status_code
        == 400
    )
    # Others are untouched.
    assert (
        client.get(
            "/api/v1/profiles", params={"identifier": "user_id:other-3"}, headers=data_dir.admin
        ).status_code
        == 200
    )
    # The audit record says what and when, never who.
    records = client.get("/api/v1/privacy/erasures", headers=data_dir.admin).json()["erasures"]
    assert len(records) == 1
    assert records[0]["actor"] == "token:admin"
    text = json.dumps(records)
    assert "ana" not in text.lower()
    # The phone in any form it could be written (a bare "7911" also turns up in a microsecond stamp).
    assert "911123456" not in text
    assert "7911 123456" not in text
    # Nothing left in any table mentions her.
    for table in ("identity_nodes", "identity_edges", "consent_records", "records"):
        dump = json.dumps([list(map(str, row)) for row in rt.db.execute(f"SELECT * FROM {table}")])
        assert "ana" not in dump.lower(), table


def test_replayed_and_late_events_are_dropped_and_counted(client: TestClient, data_dir: DataDir) -> None:
    _ana(client)
    rt = _rt(client)
    erasure = client.post(
        "/api/v1/privacy/erase", json={"identifier": "user_id:ana-7"}, headers=data_dir.admin
    ).json()
    # A replay of her SDK's queue (dropped at collection) and a late import naming her email (dropped
    # by the guard stage before identity sees it).
    assert client.post("/v1/track", json={"userId": "ana-7", "event": "Replayed"}).status_code == 200
    assert client.post("/v1/page", json={"anonymousId": "laptop-ana"}).status_code == 200
    assert (
        client.post(
            "/v1/identify", json={"anonymousId": "kiosk-9", "traits": {"email": "ANA.fernandes@example.org"}}
        ).status_code
        == 200
    )
    assert (
        client.post(
            "/v1/identify", json={"anonymousId": "kiosk-9", "traits": {"phone": "+44 7911 123456"}}
        ).status_code
        == 200
    )
    assert (
        client.post(
            "/v1/identify", json={"userId": "newcomer", "traits": {"email": "new@example.org"}}
        ).status_code
        == 200
    )
    rt.processor.run_once()
    rt.privacy_scheduler.tick()
    assert rt.privacy.gate.dropped == 2
    records = rt.privacy.erasures()
    assert records[0].erasure_id == erasure["erasure_id"]
    assert records[0].dropped_events == 4
    with pytest.raises(Exception, match="was erased"):
        rt.privacy.resolve("email:ana.fernandes@example.org")
    assert rt.identity_service.resolve("user_id:newcomer")
    decision = rt.privacy.consent_for(erasure_pid(erasure, rt), "email_marketing", "email")
    assert decision.status == "erased"
    assert not decision.allowed


def erasure_pid(erasure: dict[str, Any], rt: Runtime) -> str:
    """The erased profile's id, from the tombstone test's side: the id derived from her first node."""
    from tailor.identity.components import PROFILE_ID

    sql = PROFILE_ID.format(t="'anonymous_id'", v="'laptop-ana'")
    return str(rt.db.execute(f"SELECT {sql}")[0][0])


def test_live_state_equals_a_rebuild_after_erasure(client: TestClient, data_dir: DataDir) -> None:
    _ana(client)
    rt = _rt(client)
    rt.privacy.erase("user_id:ana-7", compact_now=False)
    tables = ("identity_nodes", "identity_edges", "event_volume", "consent_current", "records")
    live = {t: rt.db.execute(f"SELECT * FROM {t} ORDER BY ALL") for t in tables}
    rt.processor.rebuild()
    for t in tables:
        assert rt.db.execute(f"SELECT * FROM {t} ORDER BY ALL") == live[t], t


NEEDLES = (b"Ana.Fernandes@Example.org", b"ana.fernandes@example.org", b"07911 123456", b"+447911123456")


def _scan(root: Path) -> dict[str, int]:
    """How often each needle appears in the bytes of every file under root."""
    hits: dict[str, int] = {}
    for f in root.rglob("*"):
        if f.is_file():
            data = f.read_bytes()
            for needle in NEEDLES:
                if needle in data:
                    hits[f"{f.relative_to(root)}:{needle.decode()}"] = data.count(needle)
    return hits


@pytest.mark.slow
def test_no_byte_of_the_person_is_left_in_the_data_directory(tmp_path: Path) -> None:
    # Uncompressed, so that the bytes can be searched for (zstd hides literals; they are still there).
    path = tmp_path / "data"
    creds = init_data_dir(path, config=TailorConfig(store=StoreConfig(compression="uncompressed")))
    rt = Runtime(path)
    # An ART index that holds her identifiers: its blocks have to be written again too.
    rt.db.ddl("CREATE INDEX identifier_values ON identity_nodes (value)")
    with TestClient(create_app(rt)) as client:
        client.headers["X-Write-Key"] = creds.write_key
        admin = {"Authorization": f"Bearer {creds.admin_token}"}
        for b in range(12):
            batch: list[dict[str, Any]] = [
                {
                    "type": "track",
                    "event": "Product Viewed",
                    "anonymousId": f"v{b}-{i}",
                    "properties": {"sku": f"S{i}"},
                    "context": {"traits": {"email": f"u{b}.{i}@example.org"}},
                }
                for i in range(400)
            ]
            batch += [
                {
                    "type": "identify",
                    "userId": "ana-7",
                    "anonymousId": f"ana-{b}",
                    "traits": {"email": ANA_EMAIL, "phone": ANA_PHONE},
                },
                {
                    "type": "track",
                    "event": "Order Completed",
                    "userId": "ana-7",
                    "context": {"traits": {"email": "ana.fernandes@example.org"}},
                },
            ]
            assert client.post("/v1/batch", json={"batch": batch}).status_code == 200
            rt.processor.run_once()
            if b % 4 == 3:
                rt.db.checkpoint()
        assert (
            client.post("/v1/track", json={"userId": "ana-7", "properties": {"phone": ANA_PHONE}}).status_code
            == 400
        )
        rt.writer.flush()
        rt.db.checkpoint()
        before = _scan(path)
        indexes = set(rt.db.execute("SELECT table_name, index_name FROM duckdb_indexes()"))
        assert ("identity_nodes", "identifier_values") in indexes
        # The positive control: the scan does find her where she is.
        assert any(k.startswith("tailor.duckdb:") for k in before), before
        assert any(k.startswith("staging/") for k in before), before
        r = client.post(
            "/api/v1/privacy/erase", json={"identifier": "email:ana.fernandes@example.org"}, headers=admin
        )
        assert r.status_code == 200, r.text
        assert r.json()["compaction"]["tables_rewritten"] > 10
        assert _scan(path) == {}
        # Every table was written again; its indexes were made again with it.
        assert set(rt.db.execute("SELECT table_name, index_name FROM duckdb_indexes()")) == indexes
    assert _scan(path) == {}
