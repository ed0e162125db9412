"""kill -9 while clients send: every acknowledged event survives, and each is stored exactly once."""

from __future__ import annotations

import random
import threading
import time

import httpx
import pytest

from tailor.runtime import Runtime
from tests.conftest import DataDir, LiveServer

pytestmark = pytest.mark.slow


def batch(n: int, start: int) -> list[dict[str, object]]:
    return [
        {
            "type": "track",
            "event": "Product Viewed",
            "anonymousId": f"a{(start + i) % 97}",
            "messageId": f"msg-{start + i}",
            "properties": {"i": start + i},
        }
        for i in range(n)
    ]


# Default loading, and loading held off so that every acknowledged event is only in the staging log
# when the process dies (and, after the restart, until the graceful stop loads it).
LOADING = {
    "default": {},
    "staged-only": {
        "TAILOR_COLLECT__LOAD_DELAY_MS": "3600000",
        "TAILOR_COLLECT__LOAD_EVENTS": "1000000000",
        "TAILOR_PROCESSOR__LOAD_ACKNOWLEDGED": "false",
    },
}


@pytest.mark.parametrize("loading", LOADING.values(), ids=LOADING.keys())
def test_kill_minus_nine_loses_no_acknowledged_event_and_duplicates_none(  # type: ignore[no-untyped-def]
    data_dir: DataDir, tmp_path, loading: dict[str, str]
) -> None:
    server = LiveServer(data_dir, tmp_path / "server.log").start(loading)
    key = data_dir.creds.write_key
    batches = [batch(50, i * 50) for i in range(400)]
    acknowledged: set[str] = set()
    lock = threading.Lock()
    stop = threading.Event()

    def sender(worker: int) -> None:
        with httpx.Client(base_url=server.url, headers={"X-Write-Key": key}, timeout=5) as client:
            for b in batches[worker::4]:
                if stop.is_set():
                    return
                try:
                    r = client.post("/v1/batch", json={"batch": b})
                except httpx.HTTPError:
                    continue  # the server died mid-request: not acknowledged
                if r.status_code == 200:
                    with lock:
                        acknowledged.update(str(m["messageId"]) for m in b)

    threads = [threading.Thread(target=sender, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 20
    while len(acknowledged) < 3000 and time.monotonic() < deadline:
        time.sleep(0.005)
    time.sleep(random.uniform(0.0, 0.05))
    server.kill()
    stop.set()
    for t in threads:
        t.join()
    assert 3000 <= len(acknowledged) < 20000, "the kill should land in the middle of sending"

    # Restart and resend everything, acknowledged or not, as a retrying client would.
    server.start(loading)
    with httpx.Client(base_url=server.url, headers={"X-Write-Key": key}, timeout=30) as client:
        for b in batches:
            assert client.post("/v1/batch", json={"batch": b}).status_code == 200
    server.stop()

    rt = Runtime(data_dir.path)
    try:
        ids = [m for (m,) in rt.db.execute("SELECT message_id FROM events")]
    finally:
        rt.close()
    assert acknowledged <= set(ids)
    assert len(ids) == len(set(ids)) == 20000
