"""The console's JSON routes and static serving, over HTTP against the small served store."""

from __future__ import annotations

import re
import time

import httpx
import pytest

from tailor.channels.outbox import Outbox, OutboxMessage, Recipient
from tailor.channels.store import transaction
from tailor.channels.templates import TemplateDefinition
from tailor.console.web import LONG_CACHE
from tests.console.conftest import ConsoleSite

pytestmark = pytest.mark.slow


def test_shell_static_files_and_deep_links(site: ConsoleSite) -> None:
    for path in ("/", "/profiles/prof_anything", "/segments/new", "/analytics"):
        r = httpx.get(site.url + path)
        assert r.status_code == 200, path
        assert r.headers["content-type"].startswith("text/html")
        assert '<script type="module" src="/static/app.js">' in r.text
        assert "script-src 'self'" in r.headers["content-security-policy"]
    app = httpx.get(site.url + "/static/app.js")
    assert app.headers["content-type"] == "text/javascript; charset=utf-8"
    assert app.headers["cache-control"] == "no-cache"
    again = httpx.get(site.url + "/static/app.js", headers={"If-None-Match": app.headers["etag"]})
    assert again.status_code == 304
    vendor = httpx.get(site.url + "/static/vendor/echarts/echarts.min.js")
    assert vendor.status_code == 200
    assert vendor.headers["cache-control"] == LONG_CACHE
    assert vendor.headers["content-type"].startswith("text/javascript")
    assert httpx.get(site.url + "/static/console.css").headers["content-type"].startswith("text/css")
    # API paths keep their own answers: not the shell.
    assert httpx.get(site.url + "/api/v1/nothing").status_code == 404
    assert httpx.get(site.url + "/v1/track").status_code == 405
    assert httpx.get(site.url + "/static/missing.js").status_code == 404
    assert httpx.get(site.url + "/favicon.ico").status_code == 404


def test_every_page_module_is_served_and_every_import_resolves(site: ConsoleSite) -> None:
    seen: set[str] = set()
    todo = ["/static/app.js"]
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        r = httpx.get(site.url + path)
        assert r.status_code == 200, path
        folder = path.rsplit("/", 1)[0]
        for found in re.findall(r"""(?:from |import\()\s*[`"'](\.{1,2}/[^`"'$]+)[`"']""", r.text):
            todo.append(str(httpx.URL(site.url + folder + "/").join(found).path))
        for page in re.findall(r'page: "(\w+)"', r.text):
            todo.append(f"/static/pages/{page}.js")
    assert {"/static/pages/overview.js", "/static/pages/segment_builder.js", "/static/lib/api.js"} <= seen


def test_overview_counts_what_the_store_holds(site: ConsoleSite) -> None:
    body = site.get("/api/v1/console/overview", minutes=30).json()
    db = site.runtime.db
    assert body["profiles"] == db.execute("SELECT count(DISTINCT profile_id) FROM identity_nodes")[0][0]
    assert body["identifiers"] == db.execute("SELECT count(*) FROM identity_nodes")[0][0]
    assert body["events_total"] == db.execute("SELECT count(*) FROM events")[0][0]
    assert (
        body["quarantine_open"] == db.execute("SELECT count(*) FROM quarantine WHERE status = 'open'")[0][0]
    )
    assert body["quarantine_open"] >= 1
    assert len(body["series"]["minutes"]) == 30
    assert sum(body["series"]["events"]) == body["events_total"]  # all arrived within the hour
    assert sum(body["series"]["quarantined"]) == db.execute("SELECT count(*) FROM quarantine")[0][0]
    # Sends are what the outbox handed over: two messages marked sent now, one still queued.
    conn = site.runtime.messaging.connect()
    template = TemplateDefinition(
        name="overview_mail", channel="email", subject="Hi", html="<p>Hi</p>", text="Hi"
    )
    site.runtime.messaging.templates.save(conn, template)
    messages = [
        OutboxMessage(
            f"overview:{i}", "email", Recipient(f"o{i}@example.org", profile_id=f"o{i}"), "overview_mail", {}
        )
        for i in range(3)
    ]
    with transaction(conn):
        new = Outbox().enqueue_many(conn, messages)
        conn.execute(
            "UPDATE outbox SET status = 'sent', sent_at = ? WHERE idempotency_key IN ('overview:0', 'overview:1')",
            (time.time(),),
        )
    assert new == 3
    (sent,) = conn.execute("SELECT count(*) FROM outbox WHERE sent_at IS NOT NULL").fetchone()
    conn.close()
    body = site.get("/api/v1/console/overview", minutes=30).json()
    assert sent >= 2
    assert body["sends"] == sent
    assert sum(body["series"]["sends"]) == sent  # all sent within the window
    assert body["series"]["sends"][-1] >= 2
    assert body["lag"]
    assert site.get("/api/v1/console/overview", minutes="0").status_code == 400
    assert httpx.get(site.url + "/api/v1/console/overview").status_code == 401


def test_search_by_identifier_prefix_and_name(site: ConsoleSite) -> None:
    exact = site.get("/api/v1/console/search", q=site.email.upper()).json()["hits"]
    assert exact[0]["profile_id"] == site.profile_id
    assert exact[0]["exact"] is True
    assert exact[0]["matched"] == f"email: {site.email}"
    prefix = site.get("/api/v1/console/search", q=site.email[:-3]).json()["hits"]
    assert site.profile_id in [h["profile_id"] for h in prefix]
    name = site.get("/api/v1/console/search", q=site.first_name[:3].lower()).json()["hits"]
    assert all(h["name"] for h in name)
    assert any(h["name"].lower().startswith(site.first_name[:3].lower()) for h in name)
    by_id = site.get("/api/v1/console/search", q=site.profile_id).json()["hits"]
    assert [h["profile_id"] for h in by_id] == [site.profile_id]
    assert site.get("/api/v1/console/search", q="zzzz-nobody-here").json()["hits"] == []
    assert site.get("/api/v1/console/search", q="").json()["hits"] == []


def test_timeline_pages_through_every_touch_newest_first(site: ConsoleSite) -> None:
    first = site.get(f"/api/v1/console/profiles/{site.profile_id}/timeline", limit=5).json()
    profile = site.get(f"/api/v1/profiles/{site.profile_id}").json()
    assert first["total"] == profile["events"]
    seen = list(first["touches"])
    offset = 5
    while offset < first["total"]:
        page = site.get(f"/api/v1/console/profiles/{site.profile_id}/timeline", offset=offset, limit=5).json()
        seen += page["touches"]
        offset += 5
    assert len({t["seq"] for t in seen}) == first["total"]
    times = [t["at"] for t in seen]
    assert times == sorted(times, reverse=True)
    assert {t["channel"] for t in seen} <= set(profile["channels"])
    assert site.get("/api/v1/console/profiles/prof_nobody/timeline").status_code == 404


def test_live_feed_returns_only_what_is_newer(site: ConsoleSite) -> None:
    feed = site.get("/api/v1/console/live", limit=10).json()
    assert len(feed["events"]) == 10
    assert [e["seq"] for e in feed["events"]] == sorted((e["seq"] for e in feed["events"]), reverse=True)
    assert feed["rejections"][0]["reason"].startswith("$.event")
    again = site.get(
        "/api/v1/console/live", after_seq=feed["last_seq"], after_quarantine=feed["last_quarantine_id"]
    ).json()
    assert again["events"] == []
    assert again["rejections"] == []


def test_vocabulary_and_properties(site: ConsoleSite) -> None:
    vocab = site.get("/api/v1/console/vocabulary").json()
    names = {e["name"] for e in vocab["events"]}
    assert "Order Completed" in names
    assert "first_name" in {t for t, _ in vocab["traits"]}
    assert "orders_lifetime" in vocab["computed"]
    assert "email_marketing" in vocab["purposes"]
    props = site.get("/api/v1/console/vocabulary/properties", event="Order Completed").json()["properties"]
    assert "total" in {p["key"] for p in props}
    assert site.get("/api/v1/console/vocabulary/properties").status_code == 400


def test_cached_analysis_matches_the_analytics_api(site: ConsoleSite) -> None:
    params = {"steps": "Product Viewed,Order Completed", "window_hours": "72"}
    direct = site.get("/api/v1/analytics/funnel", **params).json()
    cached = site.get("/api/v1/console/analytics/funnel", **params).json()
    assert cached["result"] == direct
    assert cached["events_since"] == 0
    assert (
        site.get("/api/v1/console/analytics/funnel", **params).json()["computed_at"] == cached["computed_at"]
    )
    assert site.get("/api/v1/console/analytics/nothing").status_code == 404
    bad = site.get("/api/v1/console/analytics/funnel", steps="a", mode="sideways")
    assert bad.status_code == 400
    assert "mode must be one of" in bad.json()["message"]


def test_sources_create_and_rotate(site: ConsoleSite) -> None:
    listed = site.get("/api/v1/sources").json()["sources"]
    assert listed[0]["name"] == "web-and-app"
    assert listed[0]["events"] > 0
    made = httpx.post(site.url + "/api/v1/sources", json={"name": "crm-feed"}, headers=site.admin)
    assert made.status_code == 200
    key = made.json()["write_key"]
    sent = httpx.post(
        site.url + "/v1/track", json={"userId": "u1", "event": "E"}, headers={"X-Write-Key": key}
    )
    assert sent.status_code == 200
    twice = httpx.post(site.url + "/api/v1/sources", json={"name": "crm-feed"}, headers=site.admin)
    assert twice.status_code == 409
    assert twice.json()["problems"][0]["path"] == "name"
    bad = httpx.post(site.url + "/api/v1/sources", json={"name": "no spaces"}, headers=site.admin)
    assert bad.status_code == 422
    rotated = httpx.post(
        site.url + "/api/v1/sources/crm-feed/rotate", json={"grace_s": 0}, headers=site.admin
    )
    assert rotated.status_code == 200
    site.runtime.keys.refresh()
    old = httpx.post(
        site.url + "/v1/track", json={"userId": "u1", "event": "E"}, headers={"X-Write-Key": key}
    )
    assert old.status_code == 401
    missing = httpx.post(site.url + "/api/v1/sources/nope/rotate", json={}, headers=site.admin)
    assert missing.status_code == 404


def test_console_routes_are_documented(site: ConsoleSite) -> None:
    spec = httpx.get(site.url + "/openapi.json").json()
    for path in (
        "/api/v1/console/overview",
        "/api/v1/console/search",
        "/api/v1/console/profiles/{id}/timeline",
        "/api/v1/console/live",
        "/api/v1/console/vocabulary",
        "/api/v1/console/analytics/{name}",
        "/api/v1/sources",
    ):
        assert path in spec["paths"], path
