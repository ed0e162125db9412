"""The analytics JSON API (admin token) and the self-contained HTML report."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from starlette.testclient import TestClient

from tailor.analytics.api import PREFIX
from tailor.cli import main
from tailor.runtime import Runtime
from tests.analytics.journey_data import ana_and_ben, send
from tests.analytics.test_spend_engagement_drivers import SPEND
from tests.conftest import DataDir


def _load(client: TestClient) -> None:
    r = client.post(
        "/v1/batch", json={"batch": [{"messageId": f"m{i}", **m} for i, m in enumerate(ana_and_ben())]}
    )
    assert r.status_code == 200, r.text
    runtime: Runtime = client.app.state.runtime  # type: ignore[attr-defined]
    runtime.processor.run_once()


def test_api_needs_the_admin_token_and_answers_every_route(client: TestClient, data_dir: DataDir) -> None:
    _load(client)
    assert client.get(f"{PREFIX}/attribution").status_code == 401
    get = lambda path, **params: client.get(PREFIX + path, params=params, headers=data_dir.admin)  # noqa: E731
    body = get("/attribution").json()
    assert body["models"]["last_touch"]["email"] == {"conversions": 1.0, "value": 120.0}
    funnel = get("/funnel", steps="Product Viewed,Product Added,Order Completed", window_hours="48").json()
    assert [s["people"] for s in funnel["steps"]] == [3, 2, 1]
    bad = get("/funnel", steps="Product Viewed", mode="sideways")
    assert bad.status_code == 400
    assert "mode must be one of" in bad.json()["message"]
    assert get("/funnel", steps="a", window_hours="soon").status_code == 400
    assert get("/paths", kind="channel").json()["links"][0]["source"] == "1. paid_search"
    assert get("/retention", period="month").json()["cohorts"][0]["size"] == 3
    posted = client.post(
        f"{PREFIX}/spend", content=SPEND, headers={**data_dir.admin, "Content-Type": "text/csv"}
    )
    assert posted.status_code == 200
    assert posted.json()["stored"] == 3
    assert len(posted.json()["problems"]) == 7
    assert get("/roas").json()["first_touch"]["paid_search"]["roas"] == pytest.approx(3.0)
    assert "reasoning" in get("/budget", model="linear").json()
    people = get("/engagement").json()
    assert len(people) == 3
    assert get("/lifecycle", profile_id=people[0]["person"]).json()["history"][0][1] == "use"
    assert get("/drivers").status_code == 400  # three people are too few: said so, not fitted
    spec = client.get("/openapi.json").json()
    documented = set(spec["paths"])
    routes = {re.sub(r"\{(\w+):\w+\}", r"{\1}", r.path) for r in client.app.routes}  # type: ignore[attr-defined]
    assert {p for p in routes if p.startswith(PREFIX)} <= documented


@pytest.mark.slow
def test_report_is_one_self_contained_html_file(data_dir: DataDir, tmp_path: Path) -> None:
    rt = Runtime(data_dir.path)
    send(rt, ana_and_ben())
    rt.close()
    out = tmp_path / "report.html"
    result = CliRunner().invoke(main, ["report", "--data", str(data_dir.path), "--output", str(out)])
    assert result.exit_code == 0, result.output
    page = out.read_text()
    assert "echarts.init" in page
    assert "Apache" in page  # the library is inlined
    assert not re.search(r"<script[^>]+src=", page)  # nothing is loaded from elsewhere
    assert not re.search(r"<link[^>]+href=", page)
    for section in ("Attribution", "Markov removal", "funnel", "Sankey", "Retention", "Lifecycle"):
        assert section in page, section
    assert '"type": "sankey"' in page
    assert '"type": "heatmap"' in page
