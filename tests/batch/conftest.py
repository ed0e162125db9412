"""A live store of the synthetic customer base, exported, and one SparkSession for the whole run."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tailor.batch.export import Export, export_store
from tailor.demo.segments import DEMO_SEGMENTS
from tailor.demo.synth import SynthConfig, generate
from tests.profiles.store import Store

NOW = datetime.fromisoformat("2026-11-02T09:00:00+00:00")


@pytest.fixture(scope="session")
def live_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data directory holding 120 synthetic people, with the library and the demo's segments, processed."""
    path = tmp_path_factory.mktemp("batch") / "data"
    store = Store(path, library=True)
    store.now = NOW
    store.rt.definitions.put_many(DEMO_SEGMENTS)
    events = list(generate(SynthConfig(people=120, seed=11)).events())
    for i in range(0, len(events), 2000):
        store.send(*events[i : i + 2000], process=False)
    store.process()
    with store.rt.processor.exclusive() as cur:  # quantile thresholds from everyone, as a rebuild takes them
        store.rt.profiles.install(cur, store.rt.profiles.catalog, force=True)
    store.close()
    return path


@pytest.fixture(scope="session")
def exported(live_store: Path) -> Export:
    return export_store(live_store, live_store.parent / "export")


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    """One local-mode SparkSession for every Spark test (starting one takes 10-30 s)."""
    pytest.importorskip("pyspark")
    from tailor.engines.spark_engine import local_session

    session = local_session(
        "local[2]", {"spark.sql.shuffle.partitions": "2", "spark.default.parallelism": "2"}
    )
    yield session
    session.stop()
