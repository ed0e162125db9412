"""HTTP routes of connectors: declarations, status and run history, runs on demand, inbound webhooks."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tailor.api.admin import admin
from tailor.api.auth import requires
from tailor.collect.body import RequestError, read_body
from tailor.collect.routes import error_response, json_response
from tailor.collect.writer import Submission
from tailor.connectors.declarations import Declaration, delete_declaration, save_declaration
from tailor.connectors.exceptions import ConnectorError
from tailor.exceptions import OverloadedError

if TYPE_CHECKING:
    from tailor.connectors.state import ConnectorState
    from tailor.runtime import Runtime


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


CRM_COUNTS = ("contacts_read", "written_to_crm", "written_to_tailor", "conflicts", "deferred", "failed")
"""The counts of a CRM sync's last cycle that status shows."""


def connector_status(
    state: ConnectorState, declared_all: dict[str, Declaration], broken: dict[str, str]
) -> list[dict[str, Any]]:
    """Every declared connector with its last run, lag (seconds since its last good run) and counts."""
    now = time.time()
    last = state.last_runs()
    good = state.last_success()
    out: list[dict[str, Any]] = []
    for name, declared in sorted(declared_all.items()):
        run = last.get(name)
        out.append(
            {
                "name": name,
                "type": declared.type,
                "interval_s": declared.interval_s,
                "last_run": None if run is None else msgspec.to_builtins(run),
                "lag_s": None if name not in good else round(now - good[name], 1),
                "cursor": state.cursor(name),
            }
        )
        if declared.type == "crm_sync" and run is not None and run.details:
            details = msgspec.json.decode(run.details)
            out[-1]["sync"] = {k: details.get(k, 0) for k in CRM_COUNTS}
    out += [{"name": n, "type": None, "error": e} for n, e in sorted(broken.items())]
    return out


@admin
async def list_connectors(request: Request) -> Response:
    """Status of every connector."""
    service = _runtime(request).connectors
    declared = await asyncio.to_thread(service.declarations)
    status = await asyncio.to_thread(connector_status, service.state, declared, service.broken)
    return json_response(200, {"connectors": status})


@requires("admin")
async def put_connector(request: Request) -> Response:
    """Declares (or replaces) a connector from a JSON body of the same shape as its TOML file."""
    runtime = _runtime(request)
    name = request.path_params["name"]
    try:
        data = msgspec.json.decode(await read_body(request, 1024 * 1024))
        if not isinstance(data, dict):
            raise ConnectorError("the body must be a JSON object")
        declared = save_declaration(runtime.data_dir, name, data)
    except (msgspec.DecodeError, UnicodeDecodeError) as e:
        return error_response(400, "invalid_body", f"not JSON: {e}")
    except RequestError as e:
        return error_response(e.status, e.code, e.message)
    except ConnectorError as e:
        return error_response(400, "invalid_connector", str(e))
    return json_response(200, {"name": name, "type": declared.type, "path": str(declared.path)})


@requires("admin")
async def delete_connector(request: Request) -> Response:
    """Removes a connector's declaration (its history and outbox stay)."""
    if not delete_declaration(_runtime(request).data_dir, request.path_params["name"]):
        return error_response(404, "not_found", "no such connector")
    return json_response(200, {"deleted": request.path_params["name"]})


@admin
async def connector_runs(request: Request) -> Response:
    """A connector's run history, newest first."""
    service = _runtime(request).connectors
    runs = await asyncio.to_thread(service.state.runs, request.path_params["name"], 50)
    return json_response(200, {"runs": msgspec.to_builtins(runs)})


@requires("admin")
async def run_connector(request: Request) -> Response:
    """Runs a connector now and answers with the run."""
    service = _runtime(request).connectors
    try:
        run = await asyncio.to_thread(service.run, request.path_params["name"])
    except ConnectorError as e:
        return error_response(404 if "no connector" in str(e) else 400, "connector_error", str(e))
    return json_response(200, msgspec.to_builtins(run))


async def inbound_webhook(request: Request) -> Response:
    """Receives a signed JSON payload for one declared webhook source and stores its items as events."""
    runtime = _runtime(request)
    hook = await asyncio.to_thread(runtime.connectors.webhook, request.path_params["name"])
    if hook is None:
        return error_response(404, "not_found", "no webhook source of that name is declared")
    try:
        body = await read_body(request, runtime.config.collect.max_request_bytes)
    except RequestError as e:
        return error_response(e.status, e.code, e.message)
    if not hook.verify(body, request.headers.get(hook.spec.signature_header)):
        return error_response(401, "bad_signature", f"missing or wrong {hook.spec.signature_header}")
    received = datetime.now(UTC)
    messages, bad = hook.messages(body)
    rows, invalid = runtime.validator.validate(hook.source_id, messages, received)
    # The validator numbers messages among the good ones; the sender knows them by item position.
    positions = [i for i in range(len(messages) + len(bad)) if i not in {r.index for r in bad}]
    for r in invalid:
        r.index = positions[r.index] if r.index is not None and r.index < len(positions) else r.index
    rejections = sorted(bad + invalid, key=lambda r: r.index if r.index is not None else -1)
    submission = Submission(hook.source_id, f"webhook:{hook.name}", received, rows, rejections)
    try:
        receipt = await asyncio.wrap_future(runtime.writer.submit(submission))
    except OverloadedError as e:
        return error_response(503, "overloaded", str(e), retry_after=e.retry_after_s)
    except Exception as e:  # nothing was acknowledged: the sender must retry
        return error_response(503, "store_unavailable", f"events were not stored: {e}", retry_after=5)
    rejected = [
        {"index": r.index, "reason": r.reason, "quarantine_id": q}
        for r, q in zip(rejections, receipt.quarantine_ids, strict=False)
    ]
    status = 400 if rejected and not len(rows) else 200
    body_out = {"success": not rejected, "stored": receipt.stored, "duplicates": receipt.duplicates}
    return json_response(status, body_out | {"rejected": rejected})


def connector_routes() -> list[Route]:
    """The routes of connectors."""
    return [
        Route("/api/v1/connectors", list_connectors, methods=["GET"]),
        Route("/api/v1/connectors/{name}", put_connector, methods=["PUT"]),
        Route("/api/v1/connectors/{name}", delete_connector, methods=["DELETE"]),
        Route("/api/v1/connectors/{name}/runs", connector_runs, methods=["GET"]),
        Route("/api/v1/connectors/{name}/run", run_connector, methods=["POST"]),
        Route("/v1/webhooks/{name}", inbound_webhook, methods=["POST"]),
    ]
