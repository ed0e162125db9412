"""A store with a few hand-made people, sent through validation, the writer and identity resolution."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

from tailor.collect.writer import Submission
from tailor.runtime import Runtime

T0 = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)


def at(minutes: float) -> str:
    return (T0 + timedelta(minutes=minutes)).isoformat()


def page(
    anon: str,
    minutes: float,
    path: str = "/",
    referrer: str = "",
    campaign: dict[str, str] | None = None,
    user: str | None = None,
) -> dict[str, Any]:
    context: dict[str, Any] = {"userAgent": "Mozilla/5.0 (X11; Linux x86_64)"}
    if campaign:
        context["campaign"] = campaign
    msg: dict[str, Any] = {
        "type": "page",
        "anonymousId": anon,
        "timestamp": at(minutes),
        "name": path,
        "properties": {"url": "https://shop.example" + path, "referrer": referrer, "path": path},
        "context": context,
    }
    if user:
        msg["userId"] = user
    return msg


def track(
    event: str, minutes: float, anon: str | None = None, user: str | None = None, **properties: Any
) -> dict[str, Any]:
    msg: dict[str, Any] = {
        "type": "track",
        "event": event,
        "timestamp": at(minutes),
        "properties": properties,
    }
    if anon:
        msg["anonymousId"] = anon
    if user:
        msg["userId"] = user
    return msg


def send(rt: Runtime, messages: list[dict[str, Any]]) -> None:
    if rt.writer._thread is None:
        rt.writer.start()
    raws = [msgspec.json.encode({"messageId": f"m{i}", **m}) for i, m in enumerate(messages)]
    rows, rejections = rt.validator.validate("src", raws, T0 + timedelta(days=400))
    assert rejections == [], rejections
    rt.writer.write(Submission("src", "batch", T0, rows, rejections))
    rt.processor.run_once()


def ana_and_ben() -> list[dict[str, Any]]:
    """Ana: paid search on her laptop, then an email click and an order on her phone (two devices,
    one user id). Ben: organic search, views, never orders. Cy: direct, orders twice."""
    google = {"source": "google", "medium": "cpc", "name": "brand"}
    return [
        page("ana-laptop", 0, "/", "https://www.google.com/", google),
        page("ana-laptop", 1, "/p/1", "https://shop.example/"),
        track("Product Viewed", 1.5, anon="ana-laptop"),
        {"type": "identify", "anonymousId": "ana-laptop", "userId": "ana", "timestamp": at(2)},
        track("Email Link Clicked", 60 * 24, user="ana", campaign_id="june_sale"),
        page(
            "ana-phone",
            60 * 24 + 0.1,
            "/sale",
            "",
            {"source": "crm", "medium": "email", "name": "june_sale"},
            user="ana",
        ),
        track("Product Viewed", 60 * 24 + 1, anon="ana-phone", user="ana"),
        track("Product Added", 60 * 24 + 2, anon="ana-phone", user="ana"),
        track("Order Completed", 60 * 24 + 5, anon="ana-phone", user="ana", total=120.0, revenue=100.0),
        page("ben-1", 10, "/", "https://duckduckgo.com/"),
        track("Product Viewed", 11, anon="ben-1"),
        track("Product Added", 12, anon="ben-1"),
        page("cy-1", 20, "/", ""),
        track("Product Viewed", 21, anon="cy-1"),
        track("Order Completed", 25, anon="cy-1", total=30.0),
        page("cy-1", 60 * 24 * 40, "/", ""),
        track("Order Completed", 60 * 24 * 40 + 3, anon="cy-1", total=45.5),
    ]
