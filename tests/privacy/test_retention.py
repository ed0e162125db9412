"""Retention: events older than a rule's age deleted per source or event, with their derived rows."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import tomli_w
from starlette.testclient import TestClient

from tailor.api import create_app
from tailor.datadir import init_data_dir
from tailor.runtime import Runtime


def test_rules_delete_old_events_by_source_and_event(tmp_path: Path) -> None:
    path = tmp_path / "data"
    creds = init_data_dir(path, source_name="web")
    rules = [{"days": 30, "event": "page"}, {"days": 365, "source": "web"}]
    (path / "tailor.toml").write_text(tomli_w.dumps({"privacy": {"retention": rules}}), "utf-8")
    rt = Runtime(path)
    with TestClient(create_app(rt)) as client:
        client.headers["X-Write-Key"] = creds.write_key
        batch = [
            {"type": "page", "anonymousId": "a", "timestamp": "2026-10-01T00:00:00Z"},  # 61 days: page rule
            {"type": "page", "anonymousId": "a", "timestamp": "2026-11-20T00:00:00Z"},  # 11 days: kept
            {
                "type": "track",
                "event": "Bought",
                "anonymousId": "a",
                "timestamp": "2026-10-01T00:00:00Z",
            },  # kept
            {
                "type": "track",
                "event": "Bought",
                "anonymousId": "a",
                "timestamp": "2024-01-01T00:00:00Z",
            },  # source rule
        ]
        assert client.post("/v1/batch", json={"batch": batch}).status_code == 200
        rt.processor.run_once()
        result = rt.privacy.retain(now=datetime(2026, 12, 1, tzinfo=UTC))
        assert result.deleted == {"30 days, event page": 1, "365 days, source web": 1}
        kept = rt.db.execute("SELECT type, timestamp::DATE::VARCHAR FROM events ORDER BY seq")
        assert kept == [("page", "2026-11-20"), ("track", "2026-10-01")]
        assert rt.db.execute("SELECT count(*) FROM identity_event_hubs")[0][0] == 2
        assert rt.db.execute("SELECT sum(events) FROM event_volume")[0][0] == 2
        volume = rt.db.execute("SELECT * FROM event_volume ORDER BY ALL")
        rt.processor.rebuild()
        assert rt.db.execute("SELECT * FROM event_volume ORDER BY ALL") == volume
