"""The OpenAPI description of the console's routes."""

from __future__ import annotations

from typing import Any

from tailor.console.api import ANALYSES, PREFIX
from tailor.console.cache import Envelope
from tailor.console.debugger import LiveFeed
from tailor.console.overview import Overview
from tailor.console.search import SearchResult
from tailor.console.timeline import Timeline
from tailor.console.vocabulary import Vocabulary

SCHEMA_TYPES = (Overview, SearchResult, Timeline, LiveFeed, Vocabulary, Envelope)
_ERROR = {"$ref": "#/components/schemas/ErrorBody"}


def _json(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _query(name: str, schema: dict[str, Any], required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": required, "schema": schema}


def _path(name: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": schema or {"type": "string"}}


def _op(
    summary: str, ok: str, params: list[dict[str, Any]] | None = None, body: dict[str, Any] | None = None
) -> dict[str, Any]:
    op: dict[str, Any] = {
        "tags": ["console"],
        "summary": summary,
        "security": [{"adminToken": []}],
        "responses": {
            "200": _json("success", {"$ref": f"#/components/schemas/{ok}"} if ok else {"type": "object"}),
            "400": _json("a parameter or the body is invalid", _ERROR),
            "401": _json("missing or unknown admin token or session", _ERROR),
        },
    }
    if params:
        op["parameters"] = params
    if body is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    return op


def _page(summary: str, params: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    op: dict[str, Any] = {
        "tags": ["console"],
        "summary": summary,
        "responses": {
            "200": {"description": "an HTML page", "content": {"text/html": {"schema": {"type": "string"}}}}
        },
    }
    if params:
        op["parameters"] = params
    return {"get": op}


def console_pages() -> dict[str, Any]:
    """The console's pages and files: the shell at `/` and at every page's deep link, and the static files."""
    return {
        "/": _page("The web console"),
        "/{path}": _page(
            "A deep link into the console (the same shell; the page is drawn by its module)", [_path("path")]
        ),
        "/static": _page(
            "The console's static files (ES modules, styles, vendored ECharts) under /static/..."
        ),
    }


def console_paths() -> dict[str, Any]:
    """The paths of the console's routes."""
    whole = {"type": "integer", "minimum": 0}
    analysis = _op(
        "An analysis of /api/v1/analytics (same parameters), from the last result while a fresher one"
        " is computed",
        "Envelope",
        [_path("name", {"enum": list(ANALYSES)})],
    )
    analysis["responses"]["404"] = _json("no such analysis", _ERROR)
    timeline = _op(
        "A person's touches across devices and channels, newest first",
        "Timeline",
        [
            _path("id"),
            _query("offset", whole),
            _query("limit", {"type": "integer", "minimum": 1, "maximum": 500}),
        ],
    )
    timeline["responses"]["404"] = _json("no such profile", _ERROR)
    create = _op(
        "Create a source; its write key is shown only in this answer",
        "",
        body={"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]},
    )
    create["responses"]["409"] = _json("a source of that name exists", _ERROR)
    create["responses"]["422"] = _json("the name is not usable", _ERROR)
    rotate = _op(
        "Issue a new write key for a source; old keys expire after grace_s seconds",
        "",
        [_path("name")],
        body={"type": "object", "properties": {"grace_s": {"type": "number"}}},
    )
    rotate["responses"]["404"] = _json("no such source", _ERROR)
    return {
        f"{PREFIX}/overview": {
            "get": _op(
                "Totals and per-minute series of the overview",
                "Overview",
                [_query("minutes", {"type": "integer", "minimum": 1, "maximum": 1440})],
            )
        },
        f"{PREFIX}/search": {
            "get": _op(
                "People by any identifier or by name",
                "SearchResult",
                [
                    _query("q", {"type": "string"}),
                    _query("limit", {"type": "integer", "minimum": 1, "maximum": 100}),
                ],
            )
        },
        f"{PREFIX}/profiles/{{id}}/timeline": {"get": timeline},
        f"{PREFIX}/live": {
            "get": _op(
                "Events and rejected messages newer than the ones seen",
                "LiveFeed",
                [_query("after_seq", whole), _query("after_quarantine", whole), _query("limit", whole)],
            )
        },
        f"{PREFIX}/vocabulary": {"get": _op("What segment conditions can name", "Vocabulary")},
        f"{PREFIX}/vocabulary/properties": {
            "get": _op(
                "Property keys of an event's latest occurrences",
                "",
                [_query("event", {"type": "string"}, True)],
            )
        },
        f"{PREFIX}/analytics/{{name}}": {"get": analysis},
        "/api/v1/sources": {"get": _op("Every source with its live key prefixes", ""), "post": create},
        "/api/v1/sources/{name}/rotate": {"post": rotate},
    }
