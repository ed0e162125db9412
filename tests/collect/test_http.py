"""The collection API over HTTP: auth, encodings, limits, quarantine, dedupe and the admin API."""

from __future__ import annotations

import base64
import gzip
import json
import re
import time
from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.conftest import DataDir

TRACK = {"type": "track", "userId": "u1", "event": "Order Completed", "properties": {"total": 42.5}}


def stats(client: TestClient, data_dir: DataDir) -> dict[str, Any]:
    r = client.get("/api/v1/stats", headers=data_dir.admin)
    assert r.status_code == 200
    result: dict[str, Any] = r.json()
    return result


def events(client: TestClient, data_dir: DataDir, limit: int = 100) -> list[dict[str, Any]]:
    r = client.get(f"/api/v1/events?limit={limit}", headers=data_dir.admin)
    assert r.status_code == 200
    result: list[dict[str, Any]] = r.json()["events"]
    return result


@pytest.mark.parametrize("endpoint", ["track", "identify", "page", "screen", "group", "alias"])
def test_single_endpoints_store_their_type(client: TestClient, data_dir: DataDir, endpoint: str) -> None:
    body = {"userId": "u1", "event": "x", "groupId": "g", "previousId": "a", "messageId": f"m-{endpoint}"}
    r = client.post(f"/v1/{endpoint}", json=body)
    assert r.status_code == 200, r.text
    assert r.json() == {"success": True}
    (stored,) = events(client, data_dir)
    assert stored["type"] == endpoint
    assert stored["message_id"] == f"m-{endpoint}"


def test_write_key_from_basic_auth_header_or_body(client: TestClient, data_dir: DataDir) -> None:
    key = data_dir.creds.write_key
    del client.headers["X-Write-Key"]
    basic = {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}
    assert client.post("/v1/track", json=TRACK, headers=basic).status_code == 200
    assert client.post("/v1/track", json=TRACK, headers={"X-Write-Key": key}).status_code == 200
    assert client.post("/v1/track", json={**TRACK, "writeKey": key}).status_code == 200
    assert client.post("/v1/batch", json={"batch": [TRACK], "writeKey": key}).status_code == 200
    for bad in ({}, {"X-Write-Key": "wk_nope"}, {"Authorization": "Basic !!!"}):
        r = client.post("/v1/track", json=TRACK, headers=bad)
        assert r.status_code == 401
        assert set(r.json()) == {"code", "message"}
    assert stats(client, data_dir)["events_total"] == 4


def test_write_key_is_never_stored(client: TestClient, data_dir: DataDir) -> None:
    key = data_dir.creds.write_key
    del client.headers["X-Write-Key"]
    client.post("/v1/track", json={**TRACK, "writeKey": key})
    client.post("/v1/track", json={"userId": "u1", "writeKey": key})  # invalid: quarantined
    client.post("/v1/batch", content=b'{"writeKey": "' + key.encode() + b'", "batch": [1, ')  # undecodable
    client.app.state.runtime.writer.stop()  # type: ignore[attr-defined]
    client.app.state.runtime.processor.stop()  # type: ignore[attr-defined]  # no batch mid-checkpoint
    client.app.state.runtime.db.checkpoint()  # type: ignore[attr-defined]
    assert key.encode() not in (data_dir.path / "tailor.duckdb").read_bytes()
    wal = data_dir.path / "tailor.duckdb.wal"
    assert not wal.exists() or key.encode() not in wal.read_bytes()


def test_gzip_bodies_are_accepted(client: TestClient, data_dir: DataDir) -> None:
    body = gzip.compress(json.dumps({"batch": [TRACK, TRACK]}).encode())
    r = client.post("/v1/batch", content=body, headers={"Content-Encoding": "gzip"})
    assert r.status_code == 200, r.text
    assert stats(client, data_dir)["events_total"] == 2


@pytest.mark.parametrize(
    ("body", "headers", "status", "code"),
    [
        (gzip.compress(b'{"batch": []}')[:12], {"Content-Encoding": "gzip"}, 400, "bad_gzip"),
        (b"plain", {"Content-Encoding": "gzip"}, 400, "bad_gzip"),
        (b"{}", {"Content-Encoding": "br"}, 415, "unsupported_encoding"),
        (b"{}", {"Content-Type": "application/x-www-form-urlencoded"}, 415, "unsupported_media_type"),
        (b"x" * (4 * 1024 * 1024 + 1), {}, 413, "request_too_large"),
        (gzip.compress(b" " * (5 * 1024 * 1024)), {"Content-Encoding": "gzip"}, 413, "request_too_large"),
    ],
)
def test_bad_requests_get_clear_errors(
    client: TestClient, data_dir: DataDir, body: bytes, headers: dict[str, str], status: int, code: str
) -> None:
    client.post("/v1/track", json=TRACK)
    r = client.post("/v1/batch", content=body, headers=headers)
    assert r.status_code == status
    assert r.json()["code"] == code
    assert client.post("/v1/track", json=TRACK).status_code == 200  # still serving
    assert stats(client, data_dir)["events_total"] == 2  # nothing already accepted was lost


def test_text_plain_is_accepted_as_json(client: TestClient) -> None:
    r = client.post("/v1/track", content=json.dumps(TRACK), headers={"Content-Type": "text/plain"})
    assert r.status_code == 200


def test_batch_with_bad_events_stores_the_good_and_quarantines_the_bad(
    client: TestClient, data_dir: DataDir
) -> None:
    batch = [TRACK, {"type": "track", "userId": None, "event": "x"}, {**TRACK, "timestamp": "nope"}, TRACK]
    r = client.post("/v1/batch", json={"batch": batch})
    assert r.status_code == 200
    body = r.json()
    assert body["success"] is False
    assert body["stored"] == 2
    assert [x["index"] for x in body["rejected"]] == [1, 2]
    assert "$.userId" in body["rejected"][0]["reason"]
    assert "$.timestamp" in body["rejected"][1]["reason"]
    q = client.get("/api/v1/quarantine", headers=data_dir.admin).json()["quarantine"]
    assert {e["batch_index"] for e in q} == {1, 2}
    assert stats(client, data_dir)["quarantined_total"] == 2


def test_invalid_single_event_is_400_and_quarantined(client: TestClient, data_dir: DataDir) -> None:
    r = client.post("/v1/track", json={"userId": "u1"})
    assert r.status_code == 400
    body = r.json()
    assert body["code"] == "invalid_event"
    assert body["errors"][0]["path"] == "$.event"
    entry = client.get(f"/api/v1/quarantine/{body['quarantine_id']}", headers=data_dir.admin).json()
    assert json.loads(entry["payload"]) == {"userId": "u1"}


@pytest.mark.parametrize("payload", [b"{not json", b'{"batch": {"a": 1}}', b"\xff\xfe\xfd", b"[" * 100_000])
def test_undecodable_bodies_are_quarantined_whole(
    client: TestClient, data_dir: DataDir, payload: bytes
) -> None:
    r = client.post("/v1/batch", content=payload)
    assert r.status_code == 400
    assert r.json()["code"] == "invalid_body"
    entry = client.get(f"/api/v1/quarantine/{r.json()['quarantine_id']}", headers=data_dir.admin).json()
    assert entry["batch_index"] is None


def test_duplicates_are_stored_once(client: TestClient, data_dir: DataDir) -> None:
    one = {**TRACK, "messageId": "dup-1"}
    assert client.post("/v1/track", json=one).json() == {"success": True}
    again = client.post("/v1/batch", json={"batch": [one, one, {**one, "messageId": "dup-2"}]}).json()
    assert again == {"success": True, "stored": 1, "duplicates": 2, "rejected": []}
    assert stats(client, data_dir)["events_total"] == 2


def test_clock_skew_is_corrected(client: TestClient, data_dir: DataDir) -> None:
    # The device clock runs 1 hour fast: it says the event happened 10 s before it sent it.
    body = {**TRACK, "timestamp": "2030-01-01T11:00:00Z", "sentAt": "2030-01-01T11:00:10Z"}
    before = time.time()
    client.post("/v1/track", json=body)
    (stored,) = events(client, data_dir)
    from datetime import datetime

    corrected = datetime.fromisoformat(stored["timestamp"]).timestamp()
    received = datetime.fromisoformat(stored["received_at"]).timestamp()
    assert received - corrected == pytest.approx(10, abs=0.01)
    assert corrected == pytest.approx(before - 10, abs=5)


def test_replay_of_a_corrected_message(client: TestClient, data_dir: DataDir) -> None:
    r = client.post("/v1/track", json={"userId": "u1", "properties": {"total": 1}, "messageId": "fix-me"})
    qid = r.json()["quarantine_id"]
    still_bad = client.post(f"/api/v1/quarantine/{qid}/replay", headers=data_dir.admin)
    assert still_bad.status_code == 422
    fixed = {"userId": "u1", "event": "Order Completed", "properties": {"total": 1}, "messageId": "fix-me"}
    ok = client.post(f"/api/v1/quarantine/{qid}/replay", json=fixed, headers=data_dir.admin)
    assert ok.status_code == 200, ok.text
    assert ok.json()["status"] == "replayed"
    assert events(client, data_dir)[0]["event"] == "Order Completed"
    assert (
        client.post(f"/api/v1/quarantine/{qid}/replay", json=fixed, headers=data_dir.admin).status_code == 409
    )
    entry = client.get(f"/api/v1/quarantine/{qid}", headers=data_dir.admin).json()
    assert entry["status"] == "replayed"
    assert entry["replayed_seq"] == ok.json()["seqs"][0]
    assert stats(client, data_dir)["quarantined_total"] == 0


def test_replay_of_a_whole_quarantined_batch(client: TestClient, data_dir: DataDir) -> None:
    qid = client.post("/v1/batch", content=b'{"batch": [' + json.dumps(TRACK).encode()).json()[
        "quarantine_id"
    ]
    fixed = {"batch": [TRACK, {**TRACK, "event": "Second"}]}
    ok = client.post(f"/api/v1/quarantine/{qid}/replay", json=fixed, headers=data_dir.admin)
    assert ok.status_code == 200, ok.text
    assert len(ok.json()["seqs"]) == 2


def test_discard_and_missing_entries(client: TestClient, data_dir: DataDir) -> None:
    qid = client.post("/v1/track", json={"userId": "u1"}).json()["quarantine_id"]
    assert client.post(f"/api/v1/quarantine/{qid}/discard", headers=data_dir.admin).status_code == 200
    assert client.post(f"/api/v1/quarantine/{qid}/discard", headers=data_dir.admin).status_code == 409
    assert client.post("/api/v1/quarantine/999/replay", headers=data_dir.admin).status_code == 404
    assert client.get("/api/v1/quarantine/999", headers=data_dir.admin).status_code == 404
    listed = client.get("/api/v1/quarantine?status=discarded", headers=data_dir.admin).json()["quarantine"]
    assert [e["id"] for e in listed] == [qid]


def test_admin_api_requires_a_token(client: TestClient, data_dir: DataDir) -> None:
    for path in ("/api/v1/stats", "/api/v1/events", "/api/v1/quarantine"):
        assert client.get(path).status_code == 401
        assert client.get(path, headers={"Authorization": "Bearer at_wrong"}).status_code == 401
    assert client.get("/api/v1/events?limit=0", headers=data_dir.admin).status_code == 400
    assert client.get("/api/v1/quarantine?status=weird", headers=data_dir.admin).status_code == 400


def test_stats_report_processor_progress(client: TestClient, data_dir: DataDir) -> None:
    client.post("/v1/batch", json={"batch": [TRACK] * 5 + [{"type": "page", "anonymousId": "a"}]})
    client.post("/v1/track", json={"userId": "x"})
    client.app.state.runtime.processor.run_once()  # type: ignore[attr-defined]
    s = stats(client, data_dir)
    assert s["events_total"] == 6
    assert s["quarantined_total"] == 1
    assert s["processor"]["lag"] == 0
    assert s["events_by_type"] == {"page": 1, "track": 5}


def test_healthz_and_openapi_cover_every_route(client: TestClient) -> None:
    assert client.get("/healthz").json()["status"] == "ok"
    spec = client.get("/openapi.json").json()
    documented = set(spec["paths"])
    # Route converters ({id:int}) are not part of the documented path.
    routes = {re.sub(r"\{(\w+):\w+\}", r"{\1}", route.path) for route in client.app.routes}  # type: ignore[attr-defined]
    assert routes <= documented, routes - documented


def test_backpressure_answers_503_with_retry_after(data_dir: DataDir) -> None:
    import threading

    from tailor.api import create_app
    from tailor.config import load_config
    from tailor.runtime import Runtime

    config = load_config(data_dir.path, {"TAILOR_COLLECT__MAX_PENDING_EVENTS": "3"})
    rt = Runtime(data_dir.path, config)
    disk_is_slow = threading.Event()
    commit_group = rt.writer._commit_group

    def slow_commit_group(*args):  # type: ignore[no-untyped-def]
        disk_is_slow.wait(10)
        commit_group(*args)

    rt.writer._commit_group = slow_commit_group  # type: ignore[method-assign]
    with TestClient(create_app(rt)) as c:
        c.headers["X-Write-Key"] = data_dir.creds.write_key
        # The first request is let in (nothing was pending) and waits for the slow writer.
        first = threading.Thread(target=lambda: c.post("/v1/batch", json={"batch": [TRACK] * 2}), daemon=True)
        first.start()
        deadline = time.monotonic() + 5
        while rt.writer.pending_events == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        r = c.post("/v1/batch", json={"batch": [TRACK] * 2})
        assert r.status_code == 503
        assert r.headers["Retry-After"] == "1"
        assert r.json()["code"] == "overloaded"
        disk_is_slow.set()
        first.join(10)
        assert rt.writer.events_total == 2  # the waiting request was committed, not lost
