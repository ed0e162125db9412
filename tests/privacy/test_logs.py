"""No personal data in application logs: traffic with known emails and phones, then a scan of the logs."""

from __future__ import annotations

import logging
from pathlib import Path

import httpx
import pytest
from starlette.testclient import TestClient

from tests.conftest import DataDir, LiveServer

EMAILS = ("Quentin.Blake@Example.org", "quentin.blake@example.org", "broken@@example..org")
PHONES = ("07700 900461", "+447700900461", "7700900461")


def _traffic(send: httpx.Client | TestClient, admin: dict[str, str]) -> None:
    batch = [
        {"type": "identify", "userId": "qb-1", "traits": {"email": EMAILS[0], "phone": PHONES[0]}},
        {
            "type": "track",
            "event": "Order Completed",
            "userId": "qb-1",
            "context": {"traits": {"email": EMAILS[2]}},
        },
        {
            "type": "identify",
            "userId": "qb-1",
            "traits": {"consent": {"email_marketing": "sure"}, "email": EMAILS[0]},
        },
        {"type": "track", "userId": EMAILS[0]},  # invalid: no event name; quarantined with the payload
        {"type": "identify", "anonymousId": "x", "traits": {"phone": "+44 7700 900461 ext. 99999999999"}},
    ]
    send.post("/v1/batch", json={"batch": batch})
    send.post(
        "/v1/track",
        content=b'{"userId": "' + EMAILS[0].encode() + b'", "event": ',
        headers={"Content-Type": "application/json"},
    )
    send.get("/api/v1/profiles", params={"identifier": f"email:{EMAILS[0]}"}, headers=admin)
    send.get("/api/v1/profiles", params={"identifier": f"phone:{PHONES[0]}"}, headers=admin)
    send.get("/api/v1/profiles", params={"identifier": f"email:{EMAILS[2]}"}, headers=admin)
    send.post(
        "/api/v1/consents",
        json={"identifier": f"email:{EMAILS[0]}", "purpose": "x", "status": "y"},
        headers=admin,
    )
    send.post("/api/v1/privacy/export", json={"identifier": f"phone:{PHONES[1]}"}, headers=admin)
    send.post("/api/v1/privacy/erase", json={"identifier": f"email:{EMAILS[1]}"}, headers=admin)
    send.post("/api/v1/privacy/erase", json={"identifier": f"email:{EMAILS[1]}"}, headers=admin)
    send.post("/v1/identify", json={"userId": "qb-1", "traits": {"email": EMAILS[0]}})


def _leaks(text: str) -> list[str]:
    lowered = text.lower()
    return [n for n in (*EMAILS, *PHONES, "quentin") if n.lower() in lowered]


def test_no_personal_data_in_logs_at_debug_level(
    client: TestClient, data_dir: DataDir, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        _traffic(client, data_dir.admin)
        client.app.state.runtime.processor.run_once()  # type: ignore[attr-defined]
    # The test client's own request log (httpx2) shows the URLs it sent; the server's logs are the rest.
    records = [r for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))]
    assert len(records) > 50  # the stages' step timings, at least
    assert _leaks("\n".join(f"{r.name} {r.getMessage()} {r.exc_text or ''}" for r in records)) == []


@pytest.mark.slow
def test_no_personal_data_in_the_server_log(data_dir: DataDir, tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    server = LiveServer(data_dir, log).start()
    try:
        with httpx.Client(
            base_url=server.url, headers={"X-Write-Key": data_dir.creds.write_key}, timeout=60
        ) as c:
            _traffic(c, data_dir.admin)
    finally:
        server.stop()
    assert _leaks(log.read_text("utf-8", "replace")) == []
