"""`tailor demo --no-serve` on a small customer base: everything sent is stored and shown."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console

from tailor.channels.events import MESSAGING_SOURCE
from tailor.connectors.records import records_count
from tailor.demo.journeys import CAMPAIGN_IDS
from tailor.demo.scenario import BROKEN_FEED, run_demo
from tailor.demo.synth import SynthConfig, generate
from tailor.exceptions import DataDirError
from tailor.runtime import Runtime
from tests.conftest import free_port

pytestmark = pytest.mark.slow


def _base_events(rt: Runtime) -> int:
    """Events of the customer base and its imports: not the campaigns' (their people's acts, tracking)."""
    messaging = rt.keyring.source_id(MESSAGING_SOURCE)
    ((n,),) = rt.db.execute(
        "SELECT count(*) FROM events WHERE source_id <> ? AND NOT starts_with(message_id, ?)",
        [messaging, CAMPAIGN_IDS],
    )
    return int(n)


def test_demo_runs_end_to_end_and_rerun_stores_nothing_twice(tmp_path: Path) -> None:
    out = io.StringIO()
    console = Console(file=out, width=120)
    run_demo(tmp_path / "d", serve=False, people=60, seed=3, port=free_port(), console=console)
    text = out.getvalue()
    assert "live processing state vs. a full rebuild from the event log: equal" in text
    base = generate(SynthConfig(people=60, seed=3))
    # Imported records are events too: one identify per record row.
    expected = sum(1 for _ in base.events()) + sum(len(rows) for rows in base.records().values())
    assert "home_accessories_offer: lift over the baseline" in text  # the campaigns ran and were measured
    rt = Runtime(tmp_path / "d")
    try:
        assert _base_events(rt) == expected
        assert rt.writer.quarantined_total == len(BROKEN_FEED)
        assert set(records_count(rt.db)) == {"crm", "call_centre", "guest_checkout"}
    finally:
        rt.close()
    assert (tmp_path / "d" / "ground-truth" / "truth.csv").exists()

    run_demo(tmp_path / "d", serve=False, people=60, seed=3, port=free_port(), console=console)
    rt = Runtime(tmp_path / "d")
    try:
        assert _base_events(rt) == expected  # the same messageIds again: deduplicated
    finally:
        rt.close()


def test_demo_refuses_a_foreign_directory(tmp_path: Path) -> None:
    (tmp_path / "precious.txt").write_text("mine")
    with pytest.raises(DataDirError, match="not a Tailor data directory"):
        run_demo(
            tmp_path, serve=False, people=10, seed=1, port=free_port(), console=Console(file=io.StringIO())
        )
