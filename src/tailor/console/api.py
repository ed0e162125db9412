"""The JSON routes the console needs beyond the other APIs: overview, search, timeline, live feed,
vocabulary, cached analytics, and sources with their write keys."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tailor.analytics import api as analytics_api
from tailor.analytics.exceptions import AnalyticsError
from tailor.analytics.service import JourneyAnalytics
from tailor.api.admin import admin
from tailor.api.auth import requires
from tailor.collect.body import RequestError, read_body
from tailor.collect.routes import error_response, json_response
from tailor.console.cache import ResultCache
from tailor.console.debugger import live_feed
from tailor.console.overview import OverviewService
from tailor.console.search import ProfileSearch
from tailor.console.timeline import timeline
from tailor.console.vocabulary import VocabularyService
from tailor.exceptions import TerminalError
from tailor.identity.service import NotFoundError

if TYPE_CHECKING:
    from tailor.runtime import Runtime

PREFIX = "/api/v1/console"
ANALYSES: dict[str, Callable[[Request, JourneyAnalytics], Any]] = {
    "attribution": analytics_api.attribution,
    "funnel": analytics_api.funnel,
    "paths": analytics_api.paths,
    "retention": analytics_api.retention_,
    "roas": analytics_api.roas,
    "budget": analytics_api.budget,
    "engagement": analytics_api.engagement,
    "lifecycle": analytics_api.lifecycle,
    "drivers": analytics_api.drivers,
}
"""The analyses of /api/v1/analytics the console shows, with the same parameters and answers."""


class ConsoleServices:
    """The console's services of one running store, made on first use."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.overview = OverviewService(runtime)
        self.search = ProfileSearch(runtime.db, runtime.identity_service)
        self.vocabulary = VocabularyService(runtime)
        self.analytics = JourneyAnalytics(runtime.db, runtime.config.analytics)
        # Results change when processing moves on (analytics read the identity tables too).
        self.results = ResultCache(lambda: min(runtime.processor.offsets().values(), default=0))


class NewSource(msgspec.Struct, forbid_unknown_fields=True):
    """A source to create."""

    name: str


class Rotation(msgspec.Struct, forbid_unknown_fields=True):
    """How long the source's current keys keep working after the new one is issued."""

    grace_s: float = 86_400.0


def _services(request: Request) -> ConsoleServices:
    services: ConsoleServices | None = getattr(request.app.state, "console", None)
    if services is None:
        services = request.app.state.console = ConsoleServices(request.app.state.runtime)
    return services


def _int(request: Request, name: str, default: int | None, low: int, high: int) -> int | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise RequestError(400, "bad_parameter", f"{name} must be a whole number from {low} to {high}")
    return int(raw)


async def _answer(work: Callable[[], Awaitable[Response]]) -> Response:
    try:
        return await work()
    except RequestError as e:
        return error_response(e.status, e.code, e.message)
    except NotFoundError as e:
        return error_response(404, "not_found", str(e))
    except AnalyticsError as e:
        return error_response(400, "bad_request", str(e))


@admin
async def overview(request: Request) -> Response:
    """Totals and per-minute series for the overview dashboard."""

    async def work() -> Response:
        minutes = _int(request, "minutes", 60, 1, 1440) or 60
        return json_response(200, await asyncio.to_thread(_services(request).overview.overview, minutes))

    return await _answer(work)


@admin
async def search(request: Request) -> Response:
    """People by any identifier (exact or its start) or by the start of each word of their name."""

    async def work() -> Response:
        limit = _int(request, "limit", 20, 1, 100) or 20
        query = request.query_params.get("q", "")
        return json_response(200, await asyncio.to_thread(_services(request).search.search, query, limit))

    return await _answer(work)


@admin
async def person_timeline(request: Request) -> Response:
    """A person's touches across devices and channels, newest first."""

    async def work() -> Response:
        runtime = _services(request).runtime
        offset = _int(request, "offset", 0, 0, 10_000_000) or 0
        limit = _int(request, "limit", 100, 1, 500) or 100
        page = await asyncio.to_thread(
            timeline, runtime.db, runtime.identity_service, request.path_params["id"], offset, limit
        )
        return json_response(200, page)

    return await _answer(work)


@admin
async def live(request: Request) -> Response:
    """Events and rejected messages newer than `after_seq` and `after_quarantine`."""

    async def work() -> Response:
        runtime = _services(request).runtime
        after = _int(request, "after_seq", None, 0, 2**62)
        after_q = _int(request, "after_quarantine", None, 0, 2**62)
        limit = _int(request, "limit", 50, 1, 200) or 50
        feed = await asyncio.to_thread(live_feed, runtime.db, runtime.processor.head(), after, after_q, limit)
        return json_response(200, feed)

    return await _answer(work)


@admin
async def vocabulary(request: Request) -> Response:
    """Event names, traits, computed traits, segments, purposes and operators for the segment builder."""
    return json_response(200, await asyncio.to_thread(_services(request).vocabulary.vocabulary))


@admin
async def event_properties(request: Request) -> Response:
    """The property keys of an event's latest occurrences, with example values."""

    async def work() -> Response:
        event = request.query_params.get("event", "")
        if not event or len(event) > 200:
            raise RequestError(400, "bad_parameter", "event (an event or page name) is required")
        found = await asyncio.to_thread(_services(request).vocabulary.properties, event)
        return json_response(200, {"event": event, "properties": found})

    return await _answer(work)


@admin
async def cached_analysis(request: Request) -> Response:
    """An analysis of /api/v1/analytics, from the last result while a fresher one is computed."""

    async def work() -> Response:
        name = request.path_params["name"]
        analysis = ANALYSES.get(name)
        if analysis is None:
            raise RequestError(404, "not_found", f"no analysis {name!r}; analyses are {', '.join(ANALYSES)}")
        services = _services(request)
        key = name + "?" + "&".join(f"{k}={v}" for k, v in sorted(request.query_params.multi_items()))

        def compute() -> object:
            return analysis(request, services.analytics)

        envelope = await asyncio.to_thread(services.results.get, key, compute)
        return json_response(200, envelope)

    return await _answer(work)


@admin
async def list_sources(request: Request) -> Response:
    """Every source with the prefixes of its live write keys and its stored events."""
    runtime = _services(request).runtime

    def read() -> list[dict[str, Any]]:
        volume = {
            s: (int(n), day)
            for s, n, day in runtime.db.execute(
                "SELECT source_id, sum(events)::BIGINT, max(day) FROM event_volume GROUP BY 1"
            )
        }
        return [
            {
                "id": s.id,
                "name": s.name,
                "created_at": s.created_at,
                "key_prefixes": list(s.key_prefixes),
                "events": volume.get(s.id, (0, None))[0],
                "last_day": volume.get(s.id, (0, None))[1],
            }
            for s in runtime.keyring.sources()
        ]

    return json_response(200, {"sources": await asyncio.to_thread(read)})


async def _decode(request: Request, kind: type[Any]) -> Any:
    raw = await read_body(request, 16 * 1024)
    try:
        return msgspec.json.decode(raw or b"{}", type=kind)
    except (msgspec.ValidationError, msgspec.DecodeError) as e:
        raise RequestError(400, "invalid_body", str(e)) from e


def _source_name_problem(name: str) -> str | None:
    if not 1 <= len(name) <= 64 or not name.replace("-", "").replace("_", "").isalnum() or not name.isascii():
        return "a source name is 1-64 letters, digits, '-' or '_'"
    return None


@requires("admin")
async def create_source(request: Request) -> Response:
    """Creates a source; its write key is in this answer only."""

    async def work() -> Response:
        body: NewSource = await _decode(request, NewSource)
        problem = _source_name_problem(body.name)
        if problem:
            return error_response(
                422, "invalid_source", problem, problems=[{"path": "name", "message": problem}]
            )
        runtime = _services(request).runtime
        try:
            source_id, key = await asyncio.to_thread(runtime.keyring.add_source, body.name)
        except TerminalError as e:
            return error_response(409, "exists", str(e), problems=[{"path": "name", "message": str(e)}])
        runtime.keys.refresh()
        return json_response(200, {"id": source_id, "name": body.name, "write_key": key})

    return await _answer(work)


@requires("admin")
async def rotate_source_key(request: Request) -> Response:
    """Issues a new write key; the old ones keep working for `grace_s` seconds (0: revoked now)."""

    async def work() -> Response:
        body: Rotation = await _decode(request, Rotation)
        if not 0 <= body.grace_s <= 30 * 86_400:
            raise RequestError(400, "bad_parameter", "grace_s must be from 0 to 2592000 (30 days)")
        runtime = _services(request).runtime
        name = request.path_params["name"]
        try:
            key = await asyncio.to_thread(runtime.keyring.rotate_key, name, body.grace_s)
        except TerminalError as e:
            return error_response(404, "not_found", str(e))
        runtime.keys.refresh()
        return json_response(200, {"name": name, "write_key": key, "old_keys_expire_in_s": body.grace_s})

    return await _answer(work)


def console_api_routes() -> list[Route]:
    """The console's JSON routes."""
    return [
        Route(f"{PREFIX}/overview", overview, methods=["GET"]),
        Route(f"{PREFIX}/search", search, methods=["GET"]),
        Route(f"{PREFIX}/profiles/{{id}}/timeline", person_timeline, methods=["GET"]),
        Route(f"{PREFIX}/live", live, methods=["GET"]),
        Route(f"{PREFIX}/vocabulary", vocabulary, methods=["GET"]),
        Route(f"{PREFIX}/vocabulary/properties", event_properties, methods=["GET"]),
        Route(f"{PREFIX}/analytics/{{name}}", cached_analysis, methods=["GET"]),
        Route("/api/v1/sources", list_sources, methods=["GET"]),
        Route("/api/v1/sources", create_source, methods=["POST"]),
        Route("/api/v1/sources/{name}/rotate", rotate_source_key, methods=["POST"]),
    ]
