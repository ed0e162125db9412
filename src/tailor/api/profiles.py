"""The profile API: look a person up by any identifier, explain their identity graph, split it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tailor.api.admin import admin
from tailor.api.auth import requires
from tailor.collect.body import RequestError, read_body
from tailor.collect.routes import error_response, json_response
from tailor.identity.service import BadIdentifierError, NotFoundError, Profile
from tailor.profiles import view

if TYPE_CHECKING:
    from tailor.identity.service import IdentityService


class SplitRequest(msgspec.Struct, forbid_unknown_fields=True):
    """Split a profile: remove the edge between two of its identifiers, or block one identifier."""

    remove_edge: list[str] | None = None
    """Two identifiers as `TYPE:VALUE`, such as ["anonymous_id:ipad-1", "user_id:42"]."""
    block: str | None = None
    """One identifier as `TYPE:VALUE`; it then links nothing, now and in every rebuild."""
    note: str | None = None
    """Why, for the audit trail."""


def _service(request: Request) -> IdentityService:
    service: IdentityService = request.app.state.runtime.identity_service
    return service


def _failure(e: Exception) -> Response:
    if isinstance(e, NotFoundError):
        return error_response(404, "not_found", str(e))
    if isinstance(e, BadIdentifierError):
        return error_response(400, "bad_identifier", str(e))
    if isinstance(e, RequestError):
        return error_response(e.status, e.code, e.message)
    raise e


@admin
async def find_profile(request: Request) -> Response:
    """The unified profile holding `?identifier=TYPE:VALUE`."""
    identifier = request.query_params.get("identifier")
    if not identifier:
        return error_response(
            400, "bad_parameter", "identifier=TYPE:VALUE is required, e.g. email:ana@example.org"
        )
    service = _service(request)
    try:
        pid = await asyncio.to_thread(service.resolve, identifier)
        return json_response(200, await asyncio.to_thread(_full_profile, request, pid))
    except (NotFoundError, BadIdentifierError) as e:
        return _failure(e)


async def _by_id(request: Request, read: Callable[[str], object]) -> Response:
    try:
        return json_response(200, await asyncio.to_thread(read, request.path_params["id"]))
    except NotFoundError as e:
        return _failure(e)


def _full_profile(request: Request, profile_id: str) -> Profile:
    """The identity service's profile with its golden record, computed traits and segments."""
    return view.enrich(request.app.state.runtime.db, _service(request).profile(profile_id))


@admin
async def get_profile(request: Request) -> Response:
    """A profile by id; the id of a profile merged into another resolves to that one."""
    return await _by_id(request, lambda pid: _full_profile(request, pid))


@admin
async def trait_history(request: Request) -> Response:
    """Every value one trait of a profile was given, with its source, event and time."""
    service = _service(request)
    db = request.app.state.runtime.db
    trait = request.path_params["trait"]

    def read(pid: str) -> dict[str, Any]:
        _, nodes = service.current(pid)
        return {"trait": trait, "history": view.history(db, [n[0] for n in nodes], trait)}

    return await _by_id(request, read)


@admin
async def explain_identity(request: Request) -> Response:
    """A profile's identifiers and every edge touching them, with the evidence for each."""
    return await _by_id(request, _service(request).explain)


@requires("definitions")
async def split_identity(request: Request) -> Response:
    """Splits a wrongly merged profile by removing an edge or blocking an identifier."""
    service = _service(request)
    try:
        body = await read_body(request, 64 * 1024)
        try:
            split = msgspec.json.decode(body, type=SplitRequest)
        except msgspec.DecodeError as e:
            raise RequestError(400, "invalid_body", f"split request: {e}") from e
        if split.remove_edge is not None and len(split.remove_edge) != 2:
            raise BadIdentifierError("remove_edge must list exactly two identifiers")
        edge = None if split.remove_edge is None else (split.remove_edge[0], split.remove_edge[1])
        result = await asyncio.to_thread(
            lambda: service.split(
                request.path_params["id"], remove_edge=edge, block=split.block, note=split.note
            )
        )
        return json_response(200, result)
    except (NotFoundError, BadIdentifierError, RequestError) as e:
        return _failure(e)


@admin
async def list_overrides(request: Request) -> Response:
    """Every split users made."""
    return json_response(200, {"overrides": await asyncio.to_thread(_service(request).overrides)})


def profile_routes() -> list[Route]:
    """The routes of the profile API."""
    return [
        Route("/api/v1/profiles", find_profile, methods=["GET"]),
        Route("/api/v1/profiles/{id}", get_profile, methods=["GET"]),
        Route("/api/v1/profiles/{id}/identity", explain_identity, methods=["GET"]),
        Route("/api/v1/profiles/{id}/traits/{trait}/history", trait_history, methods=["GET"]),
        Route("/api/v1/profiles/{id}/identity/split", split_identity, methods=["POST"]),
        Route("/api/v1/identity/overrides", list_overrides, methods=["GET"]),
    ]
