"""The analytics JSON API under /api/v1/analytics (admin token), and its OpenAPI description."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tailor.analytics.exceptions import AnalyticsError
from tailor.analytics.funnels import FunnelDefinition
from tailor.analytics.service import JourneyAnalytics
from tailor.api.admin import admin
from tailor.collect.routes import error_response

if TYPE_CHECKING:
    from tailor.runtime import Runtime

PREFIX = "/api/v1/analytics"


def _service(request: Request) -> JourneyAnalytics:
    runtime: Runtime = request.app.state.runtime
    service: JourneyAnalytics | None = getattr(request.app.state, "analytics", None)
    if service is None:
        service = request.app.state.analytics = JourneyAnalytics(runtime.db, runtime.config.analytics)
    return service


def _choice(request: Request, name: str, choices: tuple[str, ...], default: str) -> str:
    value = request.query_params.get(name, default)
    if value not in choices:
        raise AnalyticsError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
    return value


def _number(request: Request, name: str, default: float) -> float:
    raw = request.query_params.get(name)
    try:
        return default if raw is None else float(raw)
    except ValueError as e:
        raise AnalyticsError(f"{name} must be a number, got {raw!r}") from e


def _endpoint(work: Callable[[Request, JourneyAnalytics], Any]) -> Callable[[Request], Any]:
    @admin
    async def endpoint(request: Request) -> Response:
        service = _service(request)
        try:
            if request.method == "POST":
                request.state.body = (await request.body()).decode("utf-8", errors="replace")
            result = await asyncio.to_thread(work, request, service)
        except AnalyticsError as e:
            return error_response(400, "bad_request", str(e))
        return Response(msgspec.json.encode(result), media_type="application/json")

    endpoint.__doc__ = work.__doc__
    return endpoint


def attribution(request: Request, s: JourneyAnalytics) -> Any:
    """Credit per channel or campaign under every attribution model."""
    level = _choice(request, "level", ("channel", "campaign"), "channel")
    return s.attribution(level)  # type: ignore[arg-type]


def funnel(request: Request, s: JourneyAnalytics) -> Any:
    """A funnel: `steps` comma-separated event or page names, `window_hours`, `mode`, `breakdown`."""
    steps = [x.strip() for x in request.query_params.get("steps", "").split(",") if x.strip()]
    mode = _choice(request, "mode", ("ordered", "strict", "unordered"), "ordered")
    definition = FunnelDefinition(
        steps,
        _number(request, "window_hours", 168.0),
        mode,  # type: ignore[arg-type]
        request.query_params.get("breakdown"),
    )
    return s.funnel(definition)


def paths(request: Request, s: JourneyAnalytics) -> Any:
    """Top paths with Sankey links; `kind`, optional `anchor` with `direction`, `steps`, `by_session`."""
    kind = _choice(request, "kind", ("channel", "campaign", "page", "event"), "channel")
    direction = _choice(request, "direction", ("from", "to"), "from")
    return s.paths(
        kind,  # type: ignore[arg-type]
        request.query_params.get("anchor"),
        direction,  # type: ignore[arg-type]
        int(_number(request, "steps", 4)),
        request.query_params.get("by_session", "false") == "true",
    )


def retention_(request: Request, s: JourneyAnalytics) -> Any:
    """Retention by cohort: `period`, `cohort_by`, `activity`."""
    return s.retention(
        _choice(request, "period", ("day", "week", "month"), "week"),  # type: ignore[arg-type]
        _choice(request, "cohort_by", ("first_seen", "first_purchase"), "first_seen"),  # type: ignore[arg-type]
        _choice(request, "activity", ("any", "purchase"), "any"),  # type: ignore[arg-type]
    )


def spend(request: Request, s: JourneyAnalytics) -> Any:
    """Imports spend from a CSV body (date, channel, campaign, cost, optional currency)."""
    return s.import_spend(request.state.body, request.query_params.get("source", "api"))


def roas(request: Request, s: JourneyAnalytics) -> Any:
    """ROAS and ROI per channel or campaign under every model."""
    return s.returns(_choice(request, "level", ("channel", "campaign"), "channel"))  # type: ignore[arg-type]


def budget(request: Request, s: JourneyAnalytics) -> Any:
    """A budget reallocation suggestion under `model`, with the reasoning."""
    return s.reallocation(request.query_params.get("model", "markov"))


def engagement(request: Request, s: JourneyAnalytics) -> Any:
    """The most engaged people (or `profile_id`), with score, percentile and stage."""
    return s.engagement(int(_number(request, "limit", 20)), request.query_params.get("profile_id"))


def lifecycle(request: Request, s: JourneyAnalytics) -> Any:
    """Stage counts per month and flows between stages, or one `profile_id`'s stage history."""
    return s.lifecycle(request.query_params.get("profile_id"))


def drivers(request: Request, s: JourneyAnalytics) -> Any:
    """Behaviours associated with converting, by ridge logistic regression with 95% intervals."""
    return s.drivers(_number(request, "penalty", 1.0))


_ROUTES: list[tuple[str, Callable[[Request, JourneyAnalytics], Any], str, list[str]]] = [
    ("/attribution", attribution, "GET", ["level"]),
    ("/funnel", funnel, "GET", ["steps", "window_hours", "mode", "breakdown"]),
    ("/paths", paths, "GET", ["kind", "anchor", "direction", "steps", "by_session"]),
    ("/retention", retention_, "GET", ["period", "cohort_by", "activity"]),
    ("/spend", spend, "POST", ["source"]),
    ("/roas", roas, "GET", ["level"]),
    ("/budget", budget, "GET", ["model"]),
    ("/engagement", engagement, "GET", ["limit", "profile_id"]),
    ("/lifecycle", lifecycle, "GET", ["profile_id"]),
    ("/drivers", drivers, "GET", ["penalty"]),
]


def analytics_routes() -> list[Route]:
    """The routes of the analytics API."""
    return [Route(PREFIX + path, _endpoint(work), methods=[method]) for path, work, method, _ in _ROUTES]


def analytics_paths(paths: dict[str, Any]) -> None:
    """Adds the analytics routes to an OpenAPI document's paths."""
    error = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}}
    for path, work, method, params in _ROUTES:
        op: dict[str, Any] = {
            "tags": ["analytics"],
            "summary": (work.__doc__ or "").strip().split("\n")[0],
            "security": [{"adminToken": []}],
            "parameters": [
                {"name": p, "in": "query", "required": False, "schema": {"type": "string"}} for p in params
            ],
            "responses": {
                "200": {
                    "description": "success",
                    "content": {"application/json": {"schema": {"type": "object"}}},
                },
                "400": {"description": "a parameter is invalid", **error},
                "401": {"description": "missing or unknown admin token", **error},
            },
        }
        if method == "POST":
            op["requestBody"] = {"required": True, "content": {"text/csv": {"schema": {"type": "string"}}}}
        paths[PREFIX + path] = {method.lower(): op}
