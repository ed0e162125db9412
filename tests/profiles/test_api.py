"""The definitions API and the profile lookup over a live app, and the CLI over a data directory."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from click.testing import CliRunner
from starlette.testclient import TestClient

from tailor.cli import main
from tailor.runtime import Runtime
from tests.conftest import DataDir


def _send(client: TestClient, *messages: dict[str, Any]) -> None:
    r = client.post("/v1/batch", json={"batch": list(messages)})
    assert r.status_code == 200, r.text
    runtime: Runtime = client.app.state.runtime  # type: ignore[attr-defined]
    runtime.processor.run_once()


def test_definitions_members_and_the_profile(client: TestClient, data_dir: DataDir) -> None:
    admin = data_dir.admin
    _send(
        client,
        {
            "type": "identify",
            "userId": "ana",
            "anonymousId": "a1",
            "traits": {"email": "ana@example.org", "city": "Leeds"},
        },
        {
            "type": "track",
            "anonymousId": "a1",
            "event": "Product Viewed",
            "properties": {"category": "Furniture"},
        },
        {"type": "track", "userId": "bob", "event": "Product Viewed", "properties": {"category": "Kids"}},
    )
    segment = {
        "name": "furniture_fans",
        "description": "Viewed furniture this month",
        "condition": {
            "event": "Product Viewed",
            "where": [{"property": "category", "op": "=", "value": "Furniture"}],
            "within": "30d",
        },
    }
    preview = client.post("/api/v1/segments/preview", json=segment, headers=admin)
    assert preview.status_code == 200, preview.text
    assert preview.json()["members"] == 1
    assert (
        client.get("/api/v1/segments/furniture_fans", headers=admin).status_code == 404
    )  # a preview saves nothing
    created = client.post("/api/v1/segments", json=segment, headers=admin)
    assert created.status_code == 201, created.text
    assert created.json()["members"] == 1
    assert client.post("/api/v1/segments", json=segment, headers=admin).status_code == 409
    listed = client.get("/api/v1/segments", headers=admin).json()["definitions"]
    assert [(d["name"], d["members"]) for d in listed] == [("furniture_fans", 1)]

    members = client.get("/api/v1/segments/furniture_fans/members", headers=admin).json()
    assert members["total"] == 1
    assert members["members"][0]["email"] == "ana@example.org"
    csv = client.get("/api/v1/segments/furniture_fans/members?format=csv", headers=admin)
    assert csv.headers["content-type"].startswith("text/csv")
    assert "ana@example.org" in csv.text.splitlines()[1]
    parquet = client.get("/api/v1/segments/furniture_fans/members?format=parquet", headers=admin)
    assert pq.read_table(io.BytesIO(parquet.content)).column("user_id").to_pylist() == ["ana"]

    # bob views furniture: he enters, and the change is an event journeys can read.
    _send(
        client,
        {
            "type": "track",
            "userId": "bob",
            "event": "Product Viewed",
            "properties": {"category": "Furniture"},
        },
    )
    changes = client.get("/api/v1/segments/furniture_fans/changes", headers=admin).json()["changes"]
    assert [(c["change"], c["backfill"]) for c in changes] == [("entered", True), ("entered", False)]
    after = changes[0]["id"]
    assert len(client.get(f"/api/v1/segment-changes?after={after}", headers=admin).json()["changes"]) == 1

    trait = {
        "name": "furniture_views",
        "aggregate": "count",
        "event": "Product Viewed",
        "where": [{"property": "category", "op": "=", "value": "Furniture"}],
    }
    assert client.put("/api/v1/traits/furniture_views", json=trait, headers=admin).status_code == 200
    profile = client.get("/api/v1/profiles?identifier=email:ANA@example.org", headers=admin).json()
    assert profile["computed_traits"]["furniture_views"] == 1
    assert profile["computed_traits"]["orders_lifetime"] == 0  # the library is there from the start
    assert [s["segment"] for s in profile["segments"]] == ["furniture_fans"]
    assert profile["traits"]["city"]["value"] == "Leeds"
    assert profile["traits"]["city"]["policy"] == "most_recent"
    history = client.get(
        f"/api/v1/profiles/{profile['profile_id']}/traits/city/history", headers=admin
    ).json()
    assert [h["value"] for h in history["history"]] == ["Leeds"]

    assert client.delete("/api/v1/segments/furniture_fans", headers=admin).status_code == 204
    assert client.get("/api/v1/segments/furniture_fans/members", headers=admin).status_code == 404


def test_bad_definitions_are_answered_with_every_problem(client: TestClient, data_dir: DataDir) -> None:
    admin = data_dir.admin
    bad = {
        "name": "x",
        "condition": {
            "all": [{"event": "A", "within": "ages"}, {"computed": "nope", "op": ">", "value": "1"}]
        },
    }
    r = client.post("/api/v1/segments", json=bad, headers=admin)
    assert r.status_code == 422
    body = r.json()
    assert body["code"] == "invalid_definition"
    assert [p["path"] for p in body["problems"]] == ["condition.all[0].within"]
    r = client.put(
        "/api/v1/segments/x",
        json={**bad, "condition": {"computed": "nope", "op": ">", "value": 1}},
        headers=admin,
    )
    assert r.status_code == 422
    assert r.json()["problems"][0]["path"] == "x.condition.computed"
    assert (
        client.put(
            "/api/v1/segments/y", json={"name": "z", "condition": {"event": "A"}}, headers=admin
        ).status_code
        == 400
    )
    assert client.post("/api/v1/traits", content=b"[1]", headers=admin).status_code == 400
    assert client.post("/api/v1/traits", content=b"{", headers=admin).status_code == 400
    assert client.get("/api/v1/traits/none", headers=admin).status_code == 404
    assert client.delete("/api/v1/traits/none", headers=admin).status_code == 404
    assert client.get("/api/v1/segments/none/members?format=xml", headers=admin).status_code == 400
    assert client.get("/api/v1/segments").status_code == 401


def test_the_cli_puts_lists_previews_and_exports(data_dir: DataDir, tmp_path: Path) -> None:
    rt = Runtime(data_dir.path)
    rt.start()
    from datetime import UTC, datetime

    from tailor.collect.writer import Submission

    raws = [
        json.dumps(
            {"type": "track", "userId": f"u{i}", "event": "Order Completed", "properties": {"total": 10 * i}}
        ).encode()
        for i in range(5)
    ]
    rows, _ = rt.validator.validate("src", raws, datetime.now(UTC))
    rt.writer.write(Submission("src", "batch", datetime.now(UTC), rows, []))
    rt.close()
    defs = tmp_path / "defs.yaml"
    defs.write_text(
        "- name: spent\n  aggregate: sum\n  of: total\n  event: Order Completed\n"
        "- name: big\n  condition: {computed: spent, op: '>=', value: 20}\n"
    )
    runner = CliRunner()
    put = runner.invoke(main, ["segments", "put", "--data", str(data_dir.path), str(defs)])
    assert put.exit_code == 0, put.output
    assert "big" in put.output
    assert "3 members" in put.output
    listed = runner.invoke(main, ["segments", "list", "--data", str(data_dir.path)])
    assert "big" in listed.output
    out = tmp_path / "big.csv"
    exported = runner.invoke(
        main, ["segments", "members", "big", "--data", str(data_dir.path), "--output", str(out)]
    )
    assert exported.exit_code == 0, exported.output
    assert sorted(line.split(",")[-1].strip('"') for line in out.read_text().splitlines()[1:]) == [
        "u2",
        "u3",
        "u4",
    ]
    bad = tmp_path / "bad.json"
    bad.write_text('{"name": "b", "condition": {"computed": "nope", "op": "exists"}}')
    refused = runner.invoke(main, ["segments", "put", "--data", str(data_dir.path), str(bad)])
    assert refused.exit_code == 1
    assert "b.condition.computed: no computed trait 'nope'" in refused.output
