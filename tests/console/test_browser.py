"""The console end to end in a real browser: Debian's Chromium driven by Playwright.

Each test checks what the page shows (numbers, drawn charts, rows), not only that it loads.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.console.conftest import PASSWORD, ConsoleSite

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="needs Debian's Chromium at /usr/bin/chromium (apt-get install chromium)",
    ),
]

if CHROMIUM.exists():
    from playwright.sync_api import Browser, Page, expect, sync_playwright
else:  # pragma: no cover - the module is skipped
    Browser = Page = object  # type: ignore[misc,assignment]

TIMEOUT_MS = 20_000


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=str(CHROMIUM),
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield b
        b.close()


@pytest.fixture(scope="module")
def page(browser: Browser, site: ConsoleSite) -> Iterator[Page]:
    """One signed-in page for the module (signing in is tested on a page of its own)."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(TIMEOUT_MS)
    p = context.new_page()
    errors: list[str] = []
    p.on("pageerror", lambda e: errors.append(str(e)))
    p.goto(site.url + "/signin")
    p.fill("input[name=username]", site.username)
    p.fill("input[name=password]", PASSWORD)
    p.click("form.signin button[type=submit]")
    p.wait_for_selector("body[data-page=overview][data-state=ready]")
    yield p
    context.close()
    assert errors == [], errors


def _ready(page: Page, name: str) -> None:
    page.wait_for_selector(f"body[data-page={name}][data-state=ready]")


def _number(text: str) -> int:
    return int(text.replace(",", "").strip())


def test_sign_in_shows_errors_next_to_fields_and_keeps_the_username(
    browser: Browser, site: ConsoleSite
) -> None:
    context = browser.new_context()
    p = context.new_page()
    p.goto(site.url + "/profiles/" + site.profile_id)  # a deep link sends an anonymous visitor to sign in
    p.wait_for_selector("body[data-page=signin][data-state=ready]")
    assert "next=" in p.url
    p.fill("input[name=username]", site.username)
    p.fill("input[name=password]", "wrong password!")
    p.click("form.signin button[type=submit]")
    error = p.locator('.field[data-field="password"] .field-error')
    expect(error).to_have_text("Unknown user or wrong password.")
    assert p.input_value("input[name=username]") == site.username
    p.fill("input[name=password]", PASSWORD)
    p.click("form.signin button[type=submit]")
    p.wait_for_selector("body[data-page=profile][data-state=ready]")  # back to the deep link
    assert p.url.endswith("/profiles/" + site.profile_id)
    context.close()


def test_overview_shows_the_numbers_and_draws_live_charts(page: Page, site: ConsoleSite) -> None:
    page.goto(site.url + "/")
    _ready(page, "overview")
    profiles = site.get("/api/v1/console/overview").json()["profiles"]
    assert _number(page.inner_text('[data-tile="profiles"] .tile-value')) == profiles
    assert _number(page.inner_text('[data-tile="events"] .tile-value')) > 1000
    assert _number(page.inner_text('[data-tile="quarantine"] .tile-value')) >= 1
    for chart in ("events", "quarantine", "identity", "lag"):
        expect(page.locator(f"#chart-{chart}[data-chart=drawn] canvas").first).to_be_visible()
    # Live: the page refreshes itself every few seconds.
    before = page.get_attribute(".page[data-page=overview]", "data-updated") or ""
    expect(page.locator(".page[data-page=overview]")).not_to_have_attribute(
        "data-updated", before, timeout=10_000
    )


def test_look_a_person_up_and_see_their_single_view(page: Page, site: ConsoleSite) -> None:
    page.goto(site.url + "/people")
    _ready(page, "people")
    page.fill("input[name=q]", site.email.upper())
    page.press("input[name=q]", "Enter")
    page.wait_for_url(re.compile(r"/profiles/"))
    _ready(page, "profile")
    assert page.url.endswith("/profiles/" + site.profile_id)
    expect(page.locator("#profile-name")).to_contain_text(site.first_name)
    profile = site.get(f"/api/v1/profiles/{site.profile_id}").json()
    graph = page.locator("#identity-graph")
    expect(graph.locator("canvas")).to_have_count(1)
    assert int(graph.get_attribute("data-nodes") or 0) >= len(profile["identifiers"])
    # Every link with its evidence, one click away.
    page.locator("details.edge-list summary").click()
    page.locator("#edge-list button").first.click()
    expect(page.locator("#edge-evidence")).to_contain_text("First evidence")
    touches = page.locator("#timeline li.touch")
    assert touches.count() == min(50, profile["events"])
    channels = set(page.locator("#timeline li.touch").evaluate_all("els => els.map(e => e.dataset.channel)"))
    assert channels <= set(profile["channels"])
    assert page.locator("#timeline .icons svg").count() >= touches.count()
    golden = page.locator("#golden tbody tr")
    assert golden.count() == len(profile["traits"])
    page.locator("#golden button", has_text="history").first.click()
    expect(page.locator("#trait-history tbody tr").first).to_be_visible()
    assert page.locator("#profile-segments li").count() == len(profile["segments"])


def test_build_and_save_a_segment_with_errors_next_to_fields(page: Page, site: ConsoleSite) -> None:
    page.goto(site.url + "/segments/new")
    _ready(page, "segment_builder")
    page.fill("input[name=name]", "recent_buyers_console")
    cond = '[data-path="condition.all[0]"]'
    page.fill(f'{cond} input[data-path="condition.all[0].event"]', "Order Completed")
    within = 'input[data-path="condition.all[0].within"]'
    page.fill(within, "3 months")
    page.click("form.builder button[type=submit]")
    # The page's own check: shown next to the field, and what was typed is still there.
    error = page.locator('.field[data-field="condition.all[0].within"] .field-error')
    expect(error).to_contain_text("not a duration")
    assert page.input_value(within) == "3 months"
    assert page.get_attribute(within, "aria-invalid") == "true"
    page.fill(within, "120d")
    expected = httpx.post(
        site.url + "/api/v1/segments/preview",
        json={
            "name": "x",
            "condition": {"all": [{"event": "Order Completed", "within": "120d", "op": ">=", "value": 1}]},
        },
        headers=site.admin,
    ).json()["members"]
    assert expected > 0
    page.wait_for_selector(f'#preview[data-state=ready][data-members="{expected}"]')
    assert _number(page.inner_text("#preview-count")) == expected
    # A server-side problem (an unknown computed trait) lands next to its field too.
    page.click("form.builder > .tree .cond-group > button")  # + condition
    second = '[data-path="condition.all[1]"]'
    page.select_option(f"{second} select[aria-label='kind of condition']", "computed")
    page.fill('input[data-path="condition.all[1].computed"]', "no_such_trait")
    page.fill('input[data-path="condition.all[1].value"]', "2")
    page.click("form.builder button[type=submit]")
    server_error = page.locator('.field[data-field="condition.all[1].computed"] .field-error')
    expect(server_error).to_contain_text("no computed trait 'no_such_trait'")
    assert page.input_value('input[data-path="condition.all[1].computed"]') == "no_such_trait"
    page.fill('input[data-path="condition.all[1].computed"]', "orders_lifetime")
    page.fill('input[data-path="condition.all[1].value"]', "1")
    page.click("form.builder button[type=submit]")
    page.wait_for_url(re.compile(r"/segments/recent_buyers_console"))
    _ready(page, "segment_builder")
    saved = site.get("/api/v1/segments/recent_buyers_console/members", limit=1000).json()
    assert saved["total"] > 0
    assert _number(page.inner_text("#members-total")) == saved["total"]
    # A saved segment's count is its live membership, not a fresh whole-base evaluation per visit.
    page.wait_for_selector(f'#preview[data-state=ready][data-members="{saved["total"]}"]')
    rows = page.locator("#members table.members tbody tr")
    assert rows.count() == min(50, saved["total"])
    shown = rows.first.locator("td").first.inner_text()
    assert shown == saved["members"][0]["profile_id"]
    definition = site.get("/api/v1/segments/recent_buyers_console").json()["definition"]
    assert definition["condition"]["all"][0]["within"] == "120d"
    assert definition["condition"]["all"][1] == {"computed": "orders_lifetime", "op": ">=", "value": 1}
    # Delete it again.
    page.once("dialog", lambda d: d.accept())
    page.click("button.danger:has-text('Delete')")
    _ready(page, "segments")
    assert site.get("/api/v1/segments/recent_buyers_console").status_code == 404


def test_analytics_dashboards_draw_every_chart(page: Page, site: ConsoleSite) -> None:
    page.goto(site.url + "/analytics")
    _ready(page, "analytics")
    for chart in ("funnel", "paths", "retention", "attribution", "lifecycle"):
        expect(page.locator(f"#chart-{chart}[data-chart=drawn] canvas").first).to_be_visible()
    funnel = site.get(
        "/api/v1/analytics/funnel",
        steps="Product Viewed,Product Added,Checkout Started,Order Completed",
        window_hours="72",
    ).json()
    people = page.locator("#funnel tbody tr td:nth-child(2)").all_inner_texts()
    assert [_number(x) for x in people] == [s["people"] for s in funnel["steps"]]
    assert page.locator("#paths tbody tr").count() > 0
    assert page.locator("#engagement tbody tr").count() == 10
    assert page.locator("#budget-reasoning li").count() >= 1


def test_sources_debugger_shows_refused_messages_and_replays_them(page: Page, site: ConsoleSite) -> None:
    page.goto(site.url + "/sources")
    _ready(page, "sources")
    expect(page.locator("#sources tbody tr").first).to_contain_text("web-and-app")
    assert int(page.get_attribute("#live-events", "data-rows") or 0) > 0
    key = httpx.post(site.url + "/api/v1/sources", json={"name": "till"}, headers=site.admin).json()[
        "write_key"
    ]
    httpx.post(
        site.url + "/v1/batch",
        json={"batch": [{"type": "track", "userId": "till-9"}]},
        headers={"X-Write-Key": key},
    )
    refused = page.locator("#live-events tr.bad", has_text="a track message needs a non-empty event name")
    expect(refused.first).to_be_visible(timeout=10_000)
    page.reload()
    _ready(page, "sources")
    page.locator("#quarantine tbody tr").first.locator("button").click()
    editor = page.locator("#payload-editor")
    expect(editor).to_be_visible()
    editor.fill('{"type": "track", "userId": "till-9", "event": "Order Completed", "messageId": "fixed-1"}')
    page.click("text=Replay corrected message")
    expect(page.locator("#quarantine-detail .notice.ok")).to_contain_text("Replayed")


def test_privacy_finds_a_person_and_exports_them(page: Page, site: ConsoleSite) -> None:
    page.goto(site.url + "/privacy")
    _ready(page, "privacy")
    page.fill("input[name=q]", site.email)
    page.press("input[name=q]", "Enter")
    expect(page.locator("#privacy-person h2")).to_be_visible()
    expect(page.locator("#consent-history")).to_be_visible()
    page.click("#export-button")
    expect(page.locator("#export-download")).to_be_visible()
    rows = page.locator("#export-result tbody tr")
    assert rows.count() > 0
    # Erasing asks for the identifier again; a wrong one is refused next to the field.
    page.fill("input[name=confirm]", "email:someone@else.example")
    page.click("form.danger-zone button[type=submit]")
    expect(page.locator('.field[data-field="identifier"] .field-error')).to_contain_text("Type exactly")
    assert page.input_value("input[name=confirm]") == "email:someone@else.example"


def test_journeys_page_draws_steps_and_branches_with_counts_and_results(
    page: Page, site: ConsoleSite
) -> None:
    from tailor.channels.templates import TemplateDefinition

    rt = site.runtime
    template = TemplateDefinition(
        name="console_mail",
        channel="email",
        subject="Hi {{ profile.first_name }}",
        html="<p>Hi</p>",
        text="Hi",
    )
    rt.messaging.templates.save(rt.messaging.conn, template)
    rt.journeys.put(
        {
            "name": "console_journey",
            "description": "drawn by the console",
            "entry": {"schedule": {"segment": "home_accessories_browsers"}},
            "holdout_percent": 20,
            "conversion": {"event": "Order Completed", "within": "7d"},
            "steps": [
                {
                    "id": "ab",
                    "split": {
                        "variants": [
                            {"name": "A", "weight": 1, "next": "mail"},
                            {"name": "B", "weight": 1, "next": "later"},
                        ]
                    },
                },
                {"id": "mail", "send": {"channel": "email", "template": "console_mail"}, "next": None},
                {"id": "later", "wait": {"duration": "1h"}},
            ],
        }
    )
    rt.journeys.runner.run_once()
    counts = site.get("/api/v1/journeys/console_journey/counts").json()["steps"]
    results = site.get("/api/v1/journeys/console_journey/results").json()
    entered = sum(g["entered"] for g in results["groups"])
    assert entered > 0
    page.goto(site.url + "/journeys")
    _ready(page, "journeys")
    row = page.locator("#journey-list tr", has_text="console_journey")
    expect(row).to_contain_text("broadcast to home_accessories_browsers")
    row.locator("a").click()
    _ready(page, "journeys")
    graph = page.locator("#journey-graph[data-chart=drawn]")
    expect(graph.locator("canvas").first).to_be_visible()
    assert graph.get_attribute("data-nodes") == "5"  # entry, three steps, end
    assert graph.get_attribute("data-edges") == "5"  # entry -> ab, A, B, mail -> end, later -> end
    assert _number(graph.get_attribute("data-entered") or "") == entered
    through = json.loads(graph.get_attribute("data-through") or "{}")
    assert through["ab"] == sum(counts["ab"].values())
    assert through["mail"] == sum(n for k, n in counts["mail"].items() if k != "now")
    expect(page.locator("#journey-results .journey-lift")).to_contain_text("holdout")


def test_the_journey_editor_creates_and_edits_a_journey_with_errors_next_to_their_fields(
    page: Page, site: ConsoleSite
) -> None:
    from tailor.channels.templates import TemplateDefinition

    rt = site.runtime
    rt.messaging.templates.save(
        rt.messaging.conn,
        TemplateDefinition(
            name="editor_mail",
            channel="email",
            subject="Welcome {{ profile.first_name }}",
            html="<p>Hi</p>",
            text="Hi",
        ),
    )
    page.goto(site.url + "/journeys")
    _ready(page, "journeys")
    page.click("a:has-text('New journey')")
    _ready(page, "journey_editor")
    page.fill("input[name=name]", "editor_welcome")
    page.select_option("select[name=entry_kind]", "segment")
    page.fill("input[name=entry_target]", "home_accessories_browsers")
    page.select_option("select[name=step_kind_0]", "send")
    body = "textarea[name=step_body_0]"
    page.fill(body, '{"channel": "email", "template": "no_such_template"}')
    # The page's own check first: a step body that is not JSON, next to that body.
    page.fill("textarea[name=settings]", '{"holdout_percent": 10,')
    page.click("form.journey-editor button[type=submit]")
    expect(page.locator('.field[data-field="settings"] .field-error')).to_contain_text("Not a JSON object")
    page.fill("textarea[name=settings]", '{"holdout_percent": 10}')
    # Then the server's: an unknown template, next to the step that names it; what was typed stays.
    page.click("form.journey-editor button[type=submit]")
    expect(page.locator('.field[data-field="steps[0].send"] .field-error')).to_contain_text(
        "no_such_template"
    )
    assert "no_such_template" in page.input_value(body)
    assert page.input_value("input[name=entry_target]") == "home_accessories_browsers"
    page.fill(body, '{"channel": "email", "template": "editor_mail"}')
    page.click("#add-step")
    page.fill("input[name=step_id_1]", "pause")
    page.fill("textarea[name=step_body_1]", '{"duration": "2d"}')
    page.click("form.journey-editor button[type=submit]")
    page.wait_for_url(re.compile(r"/journeys/editor_welcome\?saved=1"))
    _ready(page, "journeys")
    saved = site.get("/api/v1/journeys/editor_welcome").json()
    assert saved["version"] == 1
    assert saved["definition"]["entry"] == {"segment": "home_accessories_browsers"}
    assert saved["definition"]["holdout_percent"] == 10
    assert [s["id"] for s in saved["definition"]["steps"]] == ["first", "pause"]
    assert saved["definition"]["steps"][0]["send"] == {"channel": "email", "template": "editor_mail"}
    expect(page.locator("#journey-graph[data-chart=drawn]")).to_have_attribute("data-nodes", "4")
    # Edit it: the form holds what was saved; move the pause first and save a second version.
    page.click("a:has-text('Edit')")
    _ready(page, "journey_editor")
    assert page.input_value("input[name=name]") == "editor_welcome"
    assert page.input_value("input[name=step_id_1]") == "pause"
    page.locator('fieldset.step[data-step="1"] button[title="move up"]').click()
    assert page.input_value("input[name=step_id_0]") == "pause"
    expect(page.locator("#journey-json")).to_contain_text('"pause"')
    page.click("form.journey-editor button[type=submit]")
    page.wait_for_url(re.compile(r"/journeys/editor_welcome\?saved=2"))
    saved = site.get("/api/v1/journeys/editor_welcome").json()
    assert [s["id"] for s in saved["definition"]["steps"]] == ["pause", "first"]
    assert saved["definition"]["holdout_percent"] == 10
    # And delete it.
    page.click("a:has-text('Edit')")
    _ready(page, "journey_editor")
    page.once("dialog", lambda d: d.accept())
    page.click("button.danger:has-text('Delete')")
    _ready(page, "journeys")
    assert site.get("/api/v1/journeys/editor_welcome").status_code == 404
