"""One small store with the synthetic customer base, served over HTTP for the console's tests."""

from __future__ import annotations

import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import msgspec
import pytest
import uvicorn

from tailor.api import create_app
from tailor.collect.writer import Submission
from tailor.datadir import init_data_dir
from tailor.demo.segments import define_demo_segments
from tailor.demo.synth import SynthConfig, generate
from tailor.runtime import Runtime
from tests.conftest import free_port

PEOPLE = 120
PASSWORD = "console-test-password"


@dataclass
class ConsoleSite:
    """A served store: its URL, runtime, an admin token, a console user and one known person."""

    url: str
    runtime: Runtime
    token: str
    username: str
    email: str
    profile_id: str
    first_name: str

    @property
    def admin(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def get(self, path: str, **params: object) -> httpx.Response:
        return httpx.get(self.url + path, params=params, headers=self.admin, timeout=30)  # type: ignore[arg-type]


def _load(runtime: Runtime) -> None:
    base = generate(SynthConfig(people=PEOPLE, seed=11))
    raws = [msgspec.json.encode(e) for e in base.events()]
    now = datetime.now(UTC)
    source = runtime.keyring.sources()[0].id
    for lo in range(0, len(raws), 2000):
        rows, rejections = runtime.validator.validate(source, raws[lo : lo + 2000], now)
        runtime.writer.submit(Submission(source, "batch", now, rows, rejections)).result(60)
    bad = [b'{"type": "track", "userId": "till-7", "properties": {"total": 12}}']
    rows, rejections = runtime.validator.validate(source, bad, now)
    runtime.writer.submit(Submission(source, "batch", now, rows, rejections)).result(60)
    runtime.processor.run_once()


@pytest.fixture(scope="session")
def site() -> Iterator[ConsoleSite]:
    with tempfile.TemporaryDirectory(prefix="tailor-console-") as tmp:
        path = Path(tmp) / "data"
        init_data_dir(path, "web-and-app")
        runtime = Runtime(path)
        runtime.start()
        define_demo_segments(runtime)
        _load(runtime)
        token = runtime.access.store.add_token("console-tests", "admin")
        runtime.access.refresh()
        runtime.access.store.add_user("ana.admin", PASSWORD, "admin")
        # A person with a name, an email and several touches: the one the tests look up.
        ((pid, email, first),) = runtime.db.execute(
            """SELECT t.profile_id, e.text, f.text FROM profile_traits t
            JOIN profile_traits e ON e.profile_id = t.profile_id AND e.trait = 'email'
            JOIN profile_traits f ON f.profile_id = t.profile_id AND f.trait = 'first_name'
            JOIN (SELECT profile_id, count(*) AS n FROM identity_nodes GROUP BY 1) c
              ON c.profile_id = t.profile_id
            WHERE t.trait = 'last_name' ORDER BY c.n DESC, t.profile_id LIMIT 1"""
        )
        port = free_port()
        config = uvicorn.Config(
            create_app(runtime, manage_runtime=False), host="127.0.0.1", port=port, log_level="warning"
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 30
        while not server.started:
            assert thread.is_alive(), "the console's server stopped"
            assert time.monotonic() < deadline, "the console's server did not start"
            time.sleep(0.05)
        try:
            yield ConsoleSite(f"http://127.0.0.1:{port}", runtime, token, "ana.admin", email, pid, first)
        finally:
            server.should_exit = True
            thread.join(30)
            runtime.close()
