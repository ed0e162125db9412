"""The definitions API: computed traits and segments, their previews, members and entries and exits."""

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
from tailor.collect.body import RequestError, read_body
from tailor.collect.routes import error_response, json_response
from tailor.profiles.catalog import SEGMENT, TRAIT
from tailor.profiles.exceptions import DefinitionError, UnknownDefinitionError
from tailor.segments import members as segment_members

if TYPE_CHECKING:
    from tailor.profiles.service import DefinitionService

MAX_DEFINITION_BYTES = 256 * 1024


class ProblemBody(msgspec.Struct):
    """One problem of a definition, at a path inside it."""

    path: str
    message: str


class InvalidDefinition(msgspec.Struct):
    """A definition that was not saved, with every problem found in it."""

    code: str
    message: str
    problems: list[ProblemBody]


def _service(request: Request) -> DefinitionService:
    service: DefinitionService = request.app.state.runtime.definitions
    return service


def _invalid(e: DefinitionError) -> Response:
    problems = [ProblemBody(p.path, p.message) for p in e.problems]
    return json_response(422, InvalidDefinition("invalid_definition", str(e).splitlines()[0], problems))


async def _definition(request: Request) -> dict[str, Any]:
    raw = await read_body(request, MAX_DEFINITION_BYTES)
    try:
        body = msgspec.json.decode(raw)
    except msgspec.DecodeError as e:
        raise RequestError(400, "invalid_body", f"the body is not JSON: {e}") from e
    if not isinstance(body, dict):
        raise RequestError(400, "invalid_body", "the body must be a JSON object: one definition")
    name = request.path_params.get("name")
    if name is not None and body.setdefault("name", name) != name:
        raise RequestError(400, "name_mismatch", f"the body names {body['name']!r} but the path {name!r}")
    return body


async def _answer(call: Callable[[], Awaitable[Response]]) -> Response:
    try:
        return await call()
    except DefinitionError as e:
        return _invalid(e)
    except UnknownDefinitionError as e:
        return error_response(404, "not_found", str(e))
    except RequestError as e:
        return error_response(e.status, e.code, e.message)


def _listing(kind: str) -> Callable[[Request], Awaitable[Response]]:
    @admin
    async def listing(request: Request) -> Response:
        found = await asyncio.to_thread(_service(request).definitions, kind)
        return json_response(200, {"definitions": found})

    listing.__doc__ = f"Every saved {kind.replace('_', ' ')}."
    return listing


def _get(kind: str) -> Callable[[Request], Awaitable[Response]]:
    @admin
    async def get(request: Request) -> Response:
        service, name = _service(request), request.path_params["name"]
        return await _answer(lambda: _json(asyncio.to_thread(service.get, kind, name)))

    get.__doc__ = f"One {kind.replace('_', ' ')}."
    return get


def _put(kind: str) -> Callable[[Request], Awaitable[Response]]:
    @requires("definitions")
    async def put(request: Request) -> Response:
        service = _service(request)
        save = service.put_trait if kind == TRAIT else service.put_segment

        async def call() -> Response:
            body = await _definition(request)
            return json_response(200, await asyncio.to_thread(save, body))

        return await _answer(call)

    put.__doc__ = f"Creates or replaces a {kind.replace('_', ' ')}; everyone is evaluated with it at once."
    return put


def _delete(kind: str) -> Callable[[Request], Awaitable[Response]]:
    @requires("definitions")
    async def delete(request: Request) -> Response:
        service, name = _service(request), request.path_params["name"]

        async def call() -> Response:
            await asyncio.to_thread(service.delete, kind, name)
            return Response(status_code=204)

        return await _answer(call)

    delete.__doc__ = f"Deletes a {kind.replace('_', ' ')} (refused while other definitions use it)."
    return delete


async def _json(value: Awaitable[Any]) -> Response:
    return json_response(200, await value)


def _create(kind: str) -> Callable[[Request], Awaitable[Response]]:
    @requires("definitions")
    async def create(request: Request) -> Response:
        service = _service(request)
        put = service.put_trait if kind == TRAIT else service.put_segment

        async def save() -> Response:
            body = await _definition(request)
            taken = {d.name for d in service.definitions(kind)}
            if isinstance(body.get("name"), str) and body["name"] in taken:
                raise RequestError(
                    409, "exists", f"{kind.replace('_', ' ')} {body['name']!r} exists; PUT replaces it"
                )
            return json_response(201, await asyncio.to_thread(put, body))

        return await _answer(save)

    create.__doc__ = f"Creates a {kind.replace('_', ' ')} (409 if the name is taken)."
    return create


def _preview(kind: str) -> Callable[[Request], Awaitable[Response]]:
    @requires("definitions")
    async def preview(request: Request) -> Response:
        service = _service(request)
        run = service.preview_trait if kind == TRAIT else service.preview_segment

        async def evaluate() -> Response:
            body = await _definition(request)
            return json_response(200, await asyncio.to_thread(run, body))

        return await _answer(evaluate)

    preview.__doc__ = f"Evaluates a {kind.replace('_', ' ')} for everyone without saving it."
    return preview


@admin
async def list_members(request: Request) -> Response:
    """The members of a segment: JSON pages (`limit`, `offset`), or every member as CSV or Parquet."""
    runtime = request.app.state.runtime
    name = request.path_params["name"]
    fmt = request.query_params.get("format", "json")
    if fmt not in segment_members.EXPORT_FORMATS:
        return error_response(400, "bad_parameter", "format must be json, csv or parquet")
    try:
        if fmt == "json":
            limit = _number(request, "limit", 1000, 1, 100_000)
            offset = _number(request, "offset", 0, 0, 1 << 40)
            total, page = await asyncio.to_thread(segment_members.members, runtime.db, name, limit, offset)
            return json_response(200, {"segment": name, "total": total, "members": page})
        data = await asyncio.to_thread(segment_members.export_members, runtime.db, name, fmt)
    except UnknownDefinitionError as e:
        return error_response(404, "not_found", str(e))
    except RequestError as e:
        return error_response(e.status, e.code, e.message)
    media = "text/csv" if fmt == "csv" else "application/vnd.apache.parquet"
    headers = {"Content-Disposition": f'attachment; filename="{name}.{fmt}"'}
    return Response(data, media_type=media, headers=headers)


@admin
async def list_changes(request: Request) -> Response:
    """`segment entered` and `segment exited` events after id `after`, oldest first (`segment` to filter)."""
    runtime = request.app.state.runtime
    try:
        after = _number(request, "after", 0, 0, 1 << 62)
        limit = _number(request, "limit", 1000, 1, 100_000)
        segment = request.path_params.get("name") or request.query_params.get("segment")
        found = await asyncio.to_thread(segment_members.changes, runtime.db, segment, after, limit)
    except UnknownDefinitionError as e:
        return error_response(404, "not_found", str(e))
    except RequestError as e:
        return error_response(e.status, e.code, e.message)
    return json_response(200, {"changes": found})


def _number(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise RequestError(400, "bad_parameter", f"{name} must be a whole number from {low} to {high}")
    return int(raw)


def definition_routes() -> list[Route]:
    """The routes of the definitions API."""
    routes = []
    for kind, path in ((TRAIT, "traits"), (SEGMENT, "segments")):
        routes += [
            Route(f"/api/v1/{path}", _listing(kind), methods=["GET"], name=f"list_{path}"),
            Route(f"/api/v1/{path}", _create(kind), methods=["POST"], name=f"create_{path}"),
            Route(f"/api/v1/{path}/preview", _preview(kind), methods=["POST"], name=f"preview_{path}"),
            Route(f"/api/v1/{path}/{{name}}", _get(kind), methods=["GET"], name=f"get_{path}"),
            Route(f"/api/v1/{path}/{{name}}", _put(kind), methods=["PUT"], name=f"put_{path}"),
            Route(f"/api/v1/{path}/{{name}}", _delete(kind), methods=["DELETE"], name=f"delete_{path}"),
        ]
    routes += [
        Route("/api/v1/segments/{name}/members", list_members, methods=["GET"]),
        Route("/api/v1/segments/{name}/changes", list_changes, methods=["GET"]),
        Route("/api/v1/segment-changes", list_changes, methods=["GET"]),
    ]
    return routes
