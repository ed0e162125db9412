"""The Starlette application that serves collection, admin API and OpenAPI from one runtime."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import msgspec
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tailor.access.api import access_routes
from tailor.analytics.api import analytics_routes
from tailor.api.admin import admin_routes
from tailor.api.definitions import definition_routes
from tailor.api.openapi import openapi_document
from tailor.api.profiles import profile_routes
from tailor.channels.routes import messaging_routes
from tailor.collect.routes import collect_routes, error_response
from tailor.connectors.api import connector_routes
from tailor.console import console_api_routes, console_web_routes
from tailor.journeys.api import journey_routes
from tailor.privacy.api import privacy_routes

if TYPE_CHECKING:
    from tailor.runtime import Runtime

log = logging.getLogger(__name__)
KEY_REFRESH_S = 1.0


def create_app(runtime: Runtime, manage_runtime: bool = True) -> Starlette:
    """Builds the HTTP application; with `manage_runtime` its lifespan starts and closes the runtime."""
    spec = msgspec.json.encode(openapi_document())

    async def openapi(request: Request) -> Response:
        return Response(spec, media_type="application/json")

    async def refresh_keys() -> None:
        while True:
            await asyncio.sleep(KEY_REFRESH_S)
            try:
                runtime.keys.refresh()
            except Exception:
                log.exception("reloading keys failed; keeping the previous ones")

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if manage_runtime:
            runtime.start()
        task = asyncio.create_task(refresh_keys())
        try:
            yield
        finally:
            task.cancel()
            if manage_runtime:
                await asyncio.to_thread(runtime.close)

    async def server_error(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s", request.url.path, exc_info=exc)
        return error_response(500, "internal_error", "internal error; see the server log")

    routes = [
        *collect_routes(),
        *admin_routes(),
        *profile_routes(),
        *definition_routes(),
        *connector_routes(),
        *analytics_routes(),
        *privacy_routes(),
        *access_routes(),
        *messaging_routes(),
        *journey_routes(),
        Route("/openapi.json", openapi, methods=["GET"]),
        *console_api_routes(),
        *console_web_routes(),  # last: every other GET path is a console page
    ]
    app = Starlette(routes=routes, lifespan=lifespan, exception_handlers={Exception: server_error})
    app.state.runtime = runtime
    return app
