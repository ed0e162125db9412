"""Takes the README's screenshots of the console from a served demo store.

    .venv/bin/tailor demo                      # prints the console user and password, then serves
    .venv/bin/python docs/console/screenshots.py http://127.0.0.1:8080 demo PASSWORD

Drives Debian's Chromium (/usr/bin/chromium) with Playwright and writes docs/console/*.png.
"""

from __future__ import annotations

import sys
from pathlib import Path

from playwright.sync_api import Page, sync_playwright

OUT = Path(__file__).parent


def _ready(page: Page) -> None:
    page.wait_for_selector("body[data-state=ready]", timeout=60_000)
    page.wait_for_timeout(600)  # charts finish their first layout


def main(url: str, user: str, password: str) -> None:
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path="/usr/bin/chromium",
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        page = browser.new_page(viewport={"width": 1280, "height": 860})
        page.goto(url + "/signin")
        page.fill("input[name=username]", user)
        page.fill("input[name=password]", password)
        page.click("form.signin button[type=submit]")
        _ready(page)
        page.screenshot(path=OUT / "overview.png")
        hit = page.request.get(url + "/api/v1/console/search?q=a&limit=50").json()["hits"]
        named = next(h for h in hit if h["name"] and h["email"])
        page.goto(f"{url}/profiles/{named['profile_id']}")
        _ready(page)
        page.locator("#edge-list button").first.evaluate("b => b.click()")
        page.screenshot(path=OUT / "profile.png")
        page.goto(url + "/segments/new")
        _ready(page)
        page.fill("input[name=name]", "furniture_browsers_not_buying")
        page.fill('input[data-path="condition.all[0].event"]', "Product Viewed")
        page.fill('input[data-path="condition.all[0].within"]', "90d")
        page.click("text=+ property filter")
        page.fill('input[data-path="condition.all[0].where[0].property"]', "category")
        page.fill('input[data-path="condition.all[0].where[0].value"]', "Furniture")
        page.click("form.builder > .tree .cond-group > button")
        page.click('[data-path="condition.all[1]"] input[aria-label="not"]')
        page.fill('input[data-path="condition.all[1].not.event"]', "Order Completed")
        page.fill('input[data-path="condition.all[1].not.within"]', "3 months")
        page.click("form.builder button[type=submit]")
        page.wait_for_selector(".field-error")
        page.screenshot(path=OUT / "segment-builder-error.png")
        page.fill('input[data-path="condition.all[1].not.within"]', "30d")
        page.wait_for_selector("#preview[data-state=ready]", timeout=60_000)
        page.wait_for_timeout(800)
        page.screenshot(path=OUT / "segment-builder.png")
        for name, path in (("sources", "/sources"), ("analytics", "/analytics"), ("privacy", "/privacy")):
            page.goto(url + path)
            _ready(page)
            if name == "privacy":
                page.fill("input[name=q]", named["email"])
                page.press("input[name=q]", "Enter")
                page.wait_for_selector("#consent-history")
            page.screenshot(path=OUT / f"{name}.png")
        page.goto(url + "/journeys")
        _ready(page)
        page.locator("#journey-list tbody tr a").first.click()
        page.wait_for_selector("#journey-graph[data-chart=drawn]")
        page.wait_for_timeout(500)
        page.screenshot(path=OUT / "journey.png")
        page.click("a:has-text('Edit')")
        page.wait_for_selector("body[data-page=journey_editor][data-state=ready]")
        page.wait_for_timeout(800)
        page.screenshot(path=OUT / "journey-editor.png")
        page.goto(url + "/analytics")
        _ready(page)
        page.locator("#attribution").scroll_into_view_if_needed()
        page.screenshot(path=OUT / "analytics-attribution.png")
        browser.close()


if __name__ == "__main__":
    main(*sys.argv[1:4])
