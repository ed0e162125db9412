"""kill -9 of `tailor serve` mid-broadcast and mid-drip: each message exactly once, waits resume on time."""

from __future__ import annotations

import re
import time
from collections import Counter, defaultdict
from pathlib import Path

import httpx
import msgspec
import pytest

from tests.channels.conftest import SmtpServer, wait_for
from tests.conftest import DataDir, LiveServer
from tests.journeys.conftest import OFFERS, TEMPLATES, configure

pytestmark = pytest.mark.slow

PEOPLE = 300
PAUSE_S = 3
SUBJECT = re.compile(rb"^Subject: (\S+)", re.MULTILINE)


def _admin(server: LiveServer, method: str, path: str, body: object) -> None:
    r = httpx.request(method, f"{server.url}{path}", json=body, headers=server.data.admin, timeout=30)
    assert r.status_code in (200, 201), r.text


def _members(server: LiveServer) -> int:
    r = httpx.get(f"{server.url}/api/v1/segments/subscribers/members?limit=1", headers=server.data.admin)
    return int(r.json()["total"])


def test_kill_minus_nine_mid_broadcast_and_mid_drip(
    data_dir: DataDir, smtp_server: SmtpServer, tmp_path: Path
) -> None:
    arrivals: dict[str, list[tuple[bytes, float]]] = defaultdict(list)

    def on_data(data: bytes) -> None:
        to = re.search(rb"^To: .*?<?([\w.]+@example\.org)>?\r?$", data, re.MULTILINE)
        subject = SUBJECT.search(data)
        assert to is not None
        assert subject is not None
        arrivals[to.group(1).decode()].append((subject.group(1), time.time()))

    smtp_server.handler.on_data = on_data
    configure(data_dir.path, smtp_server, chunk_size=100)
    server = LiveServer(data_dir, tmp_path / "server.log").start()
    kills = []
    try:
        for t in TEMPLATES:
            _admin(server, "POST", "/api/v1/templates", msgspec.to_builtins(t))
        _admin(
            server,
            "PUT",
            "/api/v1/segments/subscribers",
            {"name": "subscribers", "condition": {"trait": "newsletter", "op": "=", "value": True}},
        )
        people = [
            {
                "type": "identify",
                "userId": f"p{i}",
                "traits": {"email": f"p{i}@example.org", "first_name": f"P{i}", "newsletter": True},
            }
            for i in range(PEOPLE)
        ]
        for start in range(0, PEOPLE, 300):
            r = httpx.post(
                f"{server.url}/v1/batch",
                json={"batch": people[start : start + 300]},
                headers={"X-Write-Key": data_dir.creds.write_key},
            )
            assert r.status_code == 200
        wait_for(lambda: _members(server) == PEOPLE, timeout=60)
        _admin(
            server,
            "PUT",
            "/api/v1/journeys/drip",
            {
                "name": "drip",
                "entry": {"schedule": {"segment": "subscribers"}},
                "offers": OFFERS,
                "steps": [
                    {"id": "hello", "send": {"channel": "email", "template": "plain_email"}},
                    {"id": "pause", "wait": {"duration": f"{PAUSE_S}s"}},
                    {
                        "id": "offer",
                        "send": {"channel": "email", "template": "offer_email", "offer": "home10"},
                    },
                ],
            },
        )
        # Mid-broadcast, then mid-drip (every hello sent, everyone waiting for the offer).
        for threshold in (PEOPLE // 4, PEOPLE):
            wait_for(lambda t=threshold: len(smtp_server.received) >= t, timeout=60)  # type: ignore[misc]
            server.kill()
            kills.append(len(smtp_server.received))
            server.start()
        wait_for(lambda: len(smtp_server.received) >= 2 * PEOPLE, timeout=60)
        time.sleep(0.5)  # anything sent twice would arrive now
    finally:
        server.stop()
    assert kills[0] < PEOPLE <= kills[1] < 2 * PEOPLE, f"the kills must land mid-way: {kills}"
    assert len(smtp_server.received) == 2 * PEOPLE, "nothing sent twice"
    assert len(arrivals) == PEOPLE
    for address, got in arrivals.items():
        subjects = Counter(s for s, _ in got)
        assert len(got) == 2, (address, got)
        assert subjects == {b"Hello": 1, got[-1][0]: 1}, (address, got)
        (hello_at,) = [at for s, at in got if s == b"Hello"]
        (offer_at,) = [at for s, at in got if s != b"Hello"]
        # The wait survives the restarts: the reminder comes no sooner than the pause after the hello.
        assert offer_at >= hello_at + PAUSE_S - 0.5, (address, offer_at - hello_at)
