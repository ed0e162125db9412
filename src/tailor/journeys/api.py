"""The journeys API: definitions (`/api/v1/journeys`), step counts and campaign results."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tailor.api.admin import admin
from tailor.api.auth import requires
from tailor.api.definitions import _definition, _invalid
from tailor.collect.body import RequestError
from tailor.collect.routes import error_response, json_response
from tailor.journeys.exceptions import InvalidJourney, UnknownJourneyError
from tailor.journeys.store import SavedJourney

if TYPE_CHECKING:
    from tailor.journeys.service import JourneyService


class JourneyList(msgspec.Struct):
    """Every saved journey."""

    journeys: list[SavedJourney]


class StepCounts(msgspec.Struct):
    """Per step of a journey: people through it by outcome, and `now` for those on it."""

    journey: str
    steps: dict[str, dict[str, int]]


def _service(request: Request) -> JourneyService:
    service: JourneyService = request.app.state.runtime.journeys
    return service


async def _answer(call: Callable[[], Awaitable[Response]]) -> Response:
    try:
        return await call()
    except InvalidJourney as e:
        return _invalid(e)
    except UnknownJourneyError as e:
        return error_response(404, "not_found", str(e))
    except RequestError as e:
        return error_response(e.status, e.code, e.message)


async def _ok(value: Awaitable[Any]) -> Response:
    return json_response(200, await value)


@admin
async def list_journeys(request: Request) -> Response:
    """Every saved journey."""
    found = await asyncio.to_thread(_service(request).saved)
    return json_response(200, JourneyList(found))


@admin
async def get_journey(request: Request) -> Response:
    """One journey."""
    service, name = _service(request), request.path_params["name"]
    return await _answer(lambda: _ok(asyncio.to_thread(service.get, name)))


@requires("definitions")
async def put_journey(request: Request) -> Response:
    """Creates or replaces a journey after checking it; 422 lists every problem."""
    service = _service(request)

    async def call() -> Response:
        body = await _definition(request)
        return json_response(200, await asyncio.to_thread(service.put, body))

    return await _answer(call)


@requires("definitions")
async def delete_journey(request: Request) -> Response:
    """Deletes a journey; the people still on it exit."""
    service, name = _service(request), request.path_params["name"]

    async def call() -> Response:
        await asyncio.to_thread(service.delete, name)
        return Response(status_code=204)

    return await _answer(call)


@admin
async def journey_counts(request: Request) -> Response:
    """How many people went through each step, and are on it now."""
    service, name = _service(request), request.path_params["name"]

    async def call() -> Response:
        counts = await asyncio.to_thread(service.counts, name)
        return json_response(200, StepCounts(name, counts))

    return await _answer(call)


@admin
async def journey_results(request: Request) -> Response:
    """Campaign results: per step and variant, per group, and lift over holdout and control."""
    service, name = _service(request), request.path_params["name"]
    return await _answer(lambda: _ok(asyncio.to_thread(service.results, name)))


def journey_routes() -> list[Route]:
    """The routes of the journeys API."""
    return [
        Route("/api/v1/journeys", list_journeys, methods=["GET"]),
        Route("/api/v1/journeys/{name}", get_journey, methods=["GET"]),
        Route("/api/v1/journeys/{name}", put_journey, methods=["PUT"]),
        Route("/api/v1/journeys/{name}", delete_journey, methods=["DELETE"]),
        Route("/api/v1/journeys/{name}/counts", journey_counts, methods=["GET"]),
        Route("/api/v1/journeys/{name}/results", journey_results, methods=["GET"]),
    ]
