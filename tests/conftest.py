"""Shared fixtures: data directories, an in-process app, and a live `tailor serve` subprocess."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import msgspec
import pytest
from starlette.testclient import TestClient

from tailor.api import create_app
from tailor.collect.writer import Submission
from tailor.datadir import Credentials, init_data_dir
from tailor.runtime import Runtime


@dataclass
class DataDir:
    """An initialised data directory with its credentials."""

    path: Path
    creds: Credentials

    @property
    def admin(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.creds.admin_token}"}


def submission(rt: Runtime, ids: list[str], bad: int = 0) -> Submission:
    """A batch of track messages with these messageIds, plus `bad` invalid ones, validated."""
    now = datetime(2026, 11, 1, tzinfo=UTC)
    raws = [msgspec.json.encode({"type": "track", "event": "E", "userId": "u", "messageId": m}) for m in ids]
    raws += [b'{"type": "track"}'] * bad
    rows, rejections = rt.validator.validate("src", raws, now)
    return Submission("src", "batch", now, rows, rejections)


def stored_ids(rt: Runtime) -> list[str]:
    """The messageIds in the `events` table, in seq order."""
    return [m for (m,) in rt.db.execute("SELECT message_id FROM events ORDER BY seq")]


@pytest.fixture
def data_dir(tmp_path: Path) -> DataDir:
    path = tmp_path / "data"
    return DataDir(path, init_data_dir(path))


@pytest.fixture
def runtime(data_dir: DataDir) -> Iterator[Runtime]:
    rt = Runtime(data_dir.path)
    rt.start()
    yield rt
    rt.close()


@pytest.fixture
def client(data_dir: DataDir) -> Iterator[TestClient]:
    """A client of the whole HTTP app, whose lifespan starts and closes the runtime."""
    rt = Runtime(data_dir.path)
    with TestClient(create_app(rt)) as c:
        c.headers["X-Write-Key"] = data_dir.creds.write_key
        yield c


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LiveServer:
    """`tailor serve` in a subprocess, as a user would run it."""

    def __init__(self, data: DataDir, log: Path) -> None:
        self.data = data
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, env: dict[str, str] | None = None) -> LiveServer:
        cmd = [
            sys.executable,
            "-m",
            "tailor.cli",
            "serve",
            "--data",
            str(self.data.path),
            "--port",
            str(self.port),
        ]
        with self._log.open("ab") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=log, env={**os.environ, **(env or {})})
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self._log.read_text()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.05)
        raise RuntimeError("server did not become ready")

    def stats(self) -> dict[str, object]:
        r = httpx.get(f"{self.url}/api/v1/stats", headers=self.data.admin, timeout=10)
        r.raise_for_status()
        result: dict[str, object] = r.json()
        return result

    def kill(self) -> None:
        """kill -9: no shutdown code runs."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


@pytest.fixture
def live_server(data_dir: DataDir, tmp_path: Path) -> Iterator[LiveServer]:
    server = LiveServer(data_dir, tmp_path / "server.log").start()
    yield server
    server.stop()
