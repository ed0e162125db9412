"""The channel and device kind read from one parse of `context` equal those read member by member."""

from __future__ import annotations

import duckdb
import pytest

from tailor.identity.service import (
    BY_PATH,
    CONTEXT_SIGNALS,
    device_kind,
    signals_reader,
    touch_channel,
)

_CONTEXTS = [
    None,
    "{}",
    '{"app": null}',
    '{"app": {"name": "shop"}, "device": {"type": "ios"}}',
    '{"device": {"type": 7}}',
    '{"device": {"type": null}}',
    '{"device": {"id": "d1"}, "userAgent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0)"}',
    '{"userAgent": "Mozilla/5.0 (SMART-TV; Linux; Tizen 6.0)"}',
    '{"userAgent": "Mozilla/5.0 (X11; Linux x86_64)"}',
    '{"userAgent": null}',
    '{"userAgent": 42}',
    '{"userAgent": "with \\"quotes\\" and \\\\ slashes Android"}',
    '{"page": {"url": "https://example.org/"}}',
    '{"channel": "server-side"}',
    '{"channel": {"nested": true}}',
    '{"record": {"kind": "crm"}}',
    '{"record": {"kind": 3}}',
    '{"record": {}}',
]


@pytest.mark.parametrize("source_id", ["web", "import:crm"])
@pytest.mark.parametrize(("event", "kind"), [(None, "page"), ("Email Opened", "track"), ("Order", "track")])
def test_both_readers_agree(source_id: str, event: str | None, kind: str) -> None:
    con = duckdb.connect()
    con.execute("CREATE TABLE events (source_id VARCHAR, event VARCHAR, type VARCHAR, context VARCHAR)")
    con.executemany(
        "INSERT INTO events VALUES (?, ?, ?, ?)", [(source_id, event, kind, c) for c in _CONTEXTS]
    )
    signals = signals_reader("_signals")
    rows = con.execute(
        f"""SELECT context, {touch_channel(BY_PATH)}, {touch_channel(signals)},
                   {device_kind(BY_PATH)}, {device_kind(signals)}
            FROM (SELECT *, {CONTEXT_SIGNALS} AS _signals FROM events)"""
    ).fetchall()
    assert len(rows) == len(_CONTEXTS)
    for context, channel, channel_once, device, device_once in rows:
        assert (channel_once, device_once) == (channel, device), context
    kinds = {device for *_, device, _ in rows}
    assert {"smart_tv", "mobile_web", "desktop_web", "app_ios", "app_7", None} <= kinds
