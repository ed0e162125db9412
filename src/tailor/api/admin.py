"""The admin API: health, statistics, recent events and the quarantine with replay."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tailor.api.auth import requires
from tailor.collect.body import RequestError, read_body
from tailor.collect.messages import BATCH_DECODER
from tailor.collect.routes import error_response, json_response
from tailor.collect.writer import Submission

if TYPE_CHECKING:
    from tailor.runtime import Runtime

Endpoint = Callable[[Request], Awaitable[Response]]


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


admin = requires("read")
"""Requires an admin token (or console session) holding the `read` scope (kept for existing routes)."""


def _int_param(request: Request, name: str, default: int, low: int = 1, high: int = 10_000) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise RequestError(400, "bad_parameter", f"{name} must be a whole number from {low} to {high}")
    return int(raw)


async def healthz(request: Request) -> Response:
    """Liveness and readiness: 200 while events can be committed, 503 otherwise."""
    runtime = _runtime(request)
    failing = runtime.writer.failing
    body = {
        "status": "failing" if failing else "ok",
        "writer": failing or "ok",
        "processor": runtime.processor.last_error or "ok",
    }
    return json_response(503 if failing else 200, body)


@admin
async def stats(request: Request) -> Response:
    """Counts of stored and quarantined events and the processor's progress."""
    runtime = _runtime(request)
    offsets = await asyncio.to_thread(runtime.processor.offsets)
    head = runtime.writer.head_seq
    volume = await asyncio.to_thread(
        runtime.db.execute, "SELECT type, sum(events)::BIGINT FROM event_volume GROUP BY type ORDER BY type"
    )
    body = {
        "events_total": runtime.writer.events_total,
        "quarantined_total": runtime.writer.quarantined_total,
        "head_seq": head,
        "processor": {
            "lag": runtime.processor.lag(offsets),
            "offsets": offsets,
            "last_error": runtime.processor.last_error,
        },
        "writer": {
            "pending_events": runtime.writer.pending_events,
            "unloaded_events": runtime.writer.unloaded_events,
            "failing": runtime.writer.failing,
        },
        "events_by_type": dict(volume),
    }
    return json_response(200, body)


async def _guarded(request: Request, work: Callable[[], Awaitable[Response]]) -> Response:
    try:
        return await work()
    except RequestError as e:
        return error_response(e.status, e.code, e.message)


@admin
async def recent_events(request: Request) -> Response:
    """The last committed events, newest first."""

    async def work() -> Response:
        limit = _int_param(request, "limit", 50, high=1000)
        q = request.query_params
        rows = await asyncio.to_thread(
            _runtime(request).events.recent, limit, q.get("type"), q.get("source_id")
        )
        return json_response(200, {"events": rows})

    return await _guarded(request, work)


@admin
async def list_quarantine(request: Request) -> Response:
    """Quarantined messages with their reasons, newest first."""

    async def work() -> Response:
        status = request.query_params.get("status", "open")
        if status not in ("open", "replayed", "discarded", "all"):
            raise RequestError(400, "bad_parameter", "status must be open, replayed, discarded or all")
        limit = _int_param(request, "limit", 100, high=1000)
        log = _runtime(request).events
        rows = await asyncio.to_thread(log.quarantine, None if status == "all" else status, limit)
        return json_response(200, {"quarantine": rows})

    return await _guarded(request, work)


@admin
async def get_quarantine(request: Request) -> Response:
    """One quarantined message."""
    entry = await asyncio.to_thread(_runtime(request).events.quarantine_entry, request.path_params["id"])
    if entry is None:
        return error_response(404, "not_found", f"no quarantine entry {request.path_params['id']}")
    return json_response(200, entry)


@requires("admin")
async def discard_quarantine(request: Request) -> Response:
    """Marks a quarantined message as discarded (kept, but no longer open)."""
    entry_id = request.path_params["id"]
    runtime = _runtime(request)
    if await asyncio.to_thread(runtime.events.quarantine_entry, entry_id) is None:
        return error_response(404, "not_found", f"no quarantine entry {entry_id}")
    if not await asyncio.to_thread(runtime.events.discard, entry_id):
        return error_response(409, "not_open", f"quarantine entry {entry_id} is not open")
    return json_response(200, {"id": entry_id, "status": "discarded"})


@requires("admin")
async def replay_quarantine(request: Request) -> Response:
    """Validates a quarantined message again, optionally corrected by the request body, and stores it."""
    runtime = _runtime(request)
    entry_id = request.path_params["id"]
    entry = await asyncio.to_thread(runtime.events.quarantine_entry, entry_id)
    if entry is None:
        return error_response(404, "not_found", f"no quarantine entry {entry_id}")
    if entry.status != "open":
        return error_response(409, "not_open", f"quarantine entry {entry_id} is {entry.status}")
    try:
        corrected = await read_body(request, runtime.config.collect.max_request_bytes)
    except RequestError as e:
        return error_response(e.status, e.code, e.message)
    stored = await asyncio.to_thread(runtime.events.quarantine_payload, entry_id)
    payload = corrected or stored or b""
    whole_batch = entry.endpoint == "batch" and entry.batch_index is None
    try:
        raws = list(BATCH_DECODER.decode(payload).batch) if whole_batch else [payload]
    except (msgspec.DecodeError, UnicodeDecodeError) as e:
        return error_response(422, "still_invalid", f"batch body could not be decoded: {e}")
    implied = None if entry.endpoint in ("batch", "replay") else entry.endpoint
    rows, rejections = runtime.validator.validate(
        entry.source_id, raws, entry.received_at, implied_type=implied, indexed=whole_batch
    )
    if rejections:
        errors = [{"index": r.index, "errors": r.errors} for r in rejections]
        return error_response(422, "still_invalid", rejections[0].reason, rejected=errors)
    sub = Submission(entry.source_id, "replay", datetime.now(UTC), rows, [], replay_of=entry_id)
    receipt = await asyncio.wrap_future(runtime.writer.submit(sub))
    return json_response(
        200, {"id": entry_id, "status": "replayed", "seqs": receipt.seqs, "duplicates": receipt.duplicates}
    )


def admin_routes() -> list[Route]:
    """The routes of the admin API."""
    return [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/api/v1/stats", stats, methods=["GET"]),
        Route("/api/v1/events", recent_events, methods=["GET"]),
        Route("/api/v1/quarantine", list_quarantine, methods=["GET"]),
        Route("/api/v1/quarantine/{id:int}", get_quarantine, methods=["GET"]),
        Route("/api/v1/quarantine/{id:int}/replay", replay_quarantine, methods=["POST"]),
        Route("/api/v1/quarantine/{id:int}/discard", discard_quarantine, methods=["POST"]),
    ]
