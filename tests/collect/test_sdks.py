"""The unmodified Segment and RudderStack Python SDKs, pointed at a live `tailor serve`."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from tests.conftest import LiveServer

pytestmark = pytest.mark.slow


def stored_events(server: LiveServer, want: int, timeout: float = 20.0) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        r = httpx.get(f"{server.url}/api/v1/events?limit=1000", headers=server.data.admin, timeout=10)
        events: list[dict[str, Any]] = r.json()["events"]
        if len(events) >= want or time.monotonic() > deadline:
            return events


def drive(client: Any) -> int:
    """Sends every kind of call the SDKs offer; returns how many messages that is."""
    for i in range(120):
        client.track(
            f"user-{i % 7}",
            "Product Viewed",
            {"product_id": f"p{i}", "price": 9.5 + i},
            anonymous_id=f"anon-{i}",
        )
    client.identify("user-1", {"email": "Ana@Example.com", "name": "Ana"})
    client.page("user-1", "Docs", "Install", {"url": "https://example.com/docs"})
    client.screen("user-1", "App", "Cart")
    client.group("user-1", "group-1", {"name": "Acme"})
    client.alias("anon-1", "user-1")
    client.track(
        "user-2", "Order Completed", {"total": 20.0}, timestamp=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    )
    return 126


def test_segment_sdk_delivers_every_event(live_server: LiveServer) -> None:
    from segment.analytics import Client

    errors: list[Exception] = []
    client = Client(
        live_server.data.creds.write_key,
        host=live_server.url,
        on_error=lambda e, b: errors.append(e),
        max_retries=3,
        sync_mode=False,
    )
    sent = drive(client)
    client.flush()
    client.shutdown()
    assert errors == []
    events = stored_events(live_server, sent)
    assert len(events) == sent
    kinds = {e["type"] for e in events}
    assert kinds == {"track", "identify", "page", "screen", "group", "alias"}
    order = next(e for e in events if e["event"] == "Order Completed")
    assert order["timestamp"].startswith("2026-01-02T03:04:05")
    assert live_server.stats()["quarantined_total"] == 0


def test_rudderstack_sdk_delivers_every_event_gzipped(live_server: LiveServer) -> None:
    import rudderstack.analytics as rudder

    errors: list[Exception] = []
    rudder.write_key = live_server.data.creds.write_key
    rudder.dataPlaneUrl = live_server.url
    rudder.gzip = True
    rudder.on_error = lambda e, b: errors.append(e)
    client = rudder.Client(rudder.write_key, host=live_server.url, gzip=True, on_error=rudder.on_error)
    sent = drive(client)
    client.flush()
    client.shutdown()
    assert errors == []
    events = stored_events(live_server, sent)
    assert len(events) == sent
    assert {e["type"] for e in events} == {"track", "identify", "page", "screen", "group", "alias"}


def test_segment_sdk_sees_413_as_a_parsed_error(live_server: LiveServer) -> None:
    from segment.analytics.request import APIError, post

    huge = [{"type": "track", "userId": "u", "event": "x", "properties": {"blob": "y" * 30_000}}] * 150
    with pytest.raises(APIError) as info:
        post(live_server.data.creds.write_key, host=live_server.url, batch=huge)
    assert info.value.status == 413
    assert info.value.code == "request_too_large"
