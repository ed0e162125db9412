"""Processing runs below collection's CPU priority in a running server (Linux: nice per thread)."""

from __future__ import annotations

import os
import sys
import threading
import time

import pytest

from tailor.exceptions import ConfigError
from tailor.runtime import Runtime
from tests.conftest import DataDir

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="thread priorities are Linux's")


def _nice(tid: int) -> int:
    with open(f"/proc/self/task/{tid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[16])


def _threads() -> list[int]:
    return [int(t) for t in os.listdir("/proc/self/task")]


def _wait_for(check: object, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_the_processor_and_duckdbs_workers_run_lower_and_collection_does_not(runtime: Runtime) -> None:
    processor = runtime.processor._thread
    writer = runtime.writer._thread
    assert processor is not None
    assert writer is not None
    nice = runtime.config.processor.nice
    assert nice > 0
    _wait_for(lambda: processor.native_id is not None and _nice(processor.native_id) == nice)
    assert writer.native_id is not None
    assert _nice(writer.native_id) == 0
    assert _nice(threading.get_native_id()) == 0
    python_threads = {t.native_id for t in threading.enumerate()}
    others = {t: _nice(t) for t in _threads() if t not in python_threads}
    # DuckDB's worker threads (the only threads Python did not start that are niced).
    assert nice in others.values(), others
    # DuckDB still has every thread it had: the setting is restored.
    assert runtime.db.execute("SELECT current_setting('threads')")[0][0] >= 1


def test_nice_zero_leaves_every_thread_as_it_was(data_dir: DataDir, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TAILOR_PROCESSOR__NICE", "0")
    niced_before = {t for t in _threads() if _nice(t)}  # other tests' stores may still be open
    rt = Runtime(data_dir.path)
    rt.start()
    try:
        processor = rt.processor._thread
        assert processor is not None
        _wait_for(lambda: processor.native_id is not None)
        time.sleep(0.1)
        assert processor.native_id is not None
        assert {t for t in _threads() if _nice(t)} <= niced_before
    finally:
        rt.close()


def test_a_nice_out_of_range_is_refused_naming_the_field(
    data_dir: DataDir, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TAILOR_PROCESSOR__NICE", "25")
    with pytest.raises(ConfigError, match=r"processor\.nice must be from 0 to 19"):
        Runtime(data_dir.path)
