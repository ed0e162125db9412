"""Probabilistic record matching inside the processing loop: match edges, vetoes, live equals rebuild."""

from __future__ import annotations

from pathlib import Path

import pytest
from starlette.testclient import TestClient

from tailor.connectors.records import import_records
from tailor.demo.synth import RECORD_KINDS, SynthConfig, generate
from tailor.identity.scoring import score_profiles
from tailor.runtime import Runtime
from tests.conftest import DataDir

pytestmark = pytest.mark.slow

# Which batch found a match is bookkeeping; everything else must equal a rebuild.
QUERIES = [f"SELECT * FROM {t} ORDER BY ALL" for t in ("records", "identity_nodes", "identity_edges")] + [
    "SELECT * EXCLUDE (found_in) FROM identity_matches ORDER BY ALL"
]


def _state(rt: Runtime) -> list[list[tuple[object, ...]]]:
    return [rt.db.execute(q) for q in QUERIES]


def test_records_match_across_sources_and_live_equals_rebuild(data_dir: DataDir, tmp_path: Path) -> None:
    base = generate(SynthConfig(people=400, seed=5))
    files = base.write_records(tmp_path / "imports")
    rt = Runtime(data_dir.path)
    rt.start()
    try:
        for kind, path in files.items():  # one batch per file: the model is fitted on the first
            import_records(rt.db, rt.writer, kind, path, RECORD_KINDS[kind][0])
            rt.processor.run_once()
        ((matches, vetoed),) = rt.db.execute("SELECT count(*), count(veto) FROM identity_matches")
        assert matches > 20
        ((linked,),) = rt.db.execute("SELECT count(*) FROM identity_edges WHERE kind = 'match' AND linking")
        assert 0 < linked <= matches - vetoed
        score = score_profiles(rt.db, base.truth(), rt.identity.normaliser)
        assert score.over_merged_profiles == 0
        live = _state(rt)
        rt.processor.rebuild()
        assert _state(rt) == live
    finally:
        rt.close()


def test_a_match_explains_itself(client: TestClient, data_dir: DataDir, tmp_path: Path) -> None:
    runtime: Runtime = client.app.state.runtime  # type: ignore[attr-defined]
    base = generate(SynthConfig(people=300, seed=2))
    for kind, path in base.write_records(tmp_path / "imports").items():
        import_records(runtime.db, runtime.writer, kind, path, RECORD_KINDS[kind][0])
    runtime.processor.run_once()
    ((a, b),) = runtime.db.execute(
        "SELECT a_value, b_value FROM identity_edges WHERE kind = 'match' AND linking ORDER BY ALL LIMIT 1"
    )
    r = client.get("/api/v1/profiles", params={"identifier": f"record:{a}"}, headers=data_dir.admin)
    assert r.status_code == 200, r.text
    profile = r.json()
    assert f"record:{b}" in {f"{i['type']}:{i['value']}" for i in profile["identifiers"]}
    explained = client.get(
        f"/api/v1/profiles/{profile['profile_id']}/identity", headers=data_dir.admin
    ).json()
    (edge,) = [e for e in explained["edges"] if (e["a"]["value"], e["b"]["value"]) == (a, b)]
    assert edge["rule"] == "linked"
    assert edge["match"]["probability"] >= 0.99
    assert edge["match"]["veto"] is None
    assert sum(c["weight"] for c in edge["match"]["contributions"].values()) > 0
    assert edge["evidence"]["message_id"].startswith("match: probability")
