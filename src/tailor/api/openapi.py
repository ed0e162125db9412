"""The OpenAPI description of every endpoint, built from the same types the endpoints use."""

from __future__ import annotations

from typing import Any

import msgspec

from tailor import __version__
from tailor.analytics.api import analytics_paths
from tailor.api.openapi_definitions import DEFINITION_TYPES, definition_paths
from tailor.api.profiles import SplitRequest
from tailor.channels.openapi import MESSAGING_SCHEMAS, messaging_paths
from tailor.collect.messages import BatchDoc, FieldError, MessageDoc
from tailor.collect.routes import SINGLE_ENDPOINTS
from tailor.connectors.openapi import connector_paths
from tailor.console import openapi as console_openapi
from tailor.identity.service import IdentityExplanation, Override, Profile, SplitResult
from tailor.journeys.openapi import JOURNEY_SCHEMAS, journey_paths
from tailor.privacy import openapi as privacy_openapi
from tailor.store.eventlog import QuarantineEntry, StoredEvent


class ErrorBody(msgspec.Struct):
    """An error: a machine-readable code and a message for people (the shape Segment's SDKs parse)."""

    code: str
    message: str


class Rejected(msgspec.Struct):
    """A message of a batch that failed validation and was quarantined."""

    index: int | None
    reason: str
    errors: list[FieldError]
    quarantine_id: int


class CollectResult(msgspec.Struct):
    """The answer to a collection request that was stored (`{"success": true}` when all passed)."""

    success: bool
    stored: int | None = None
    duplicates: int | None = None
    rejected: list[Rejected] | None = None


class EventList(msgspec.Struct):
    """Recent events."""

    events: list[StoredEvent]


class QuarantineList(msgspec.Struct):
    """Quarantined messages."""

    quarantine: list[QuarantineEntry]


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_ERRORS = {
    "400": _json(
        _ref("ErrorBody"), "the request or its message is invalid (invalid messages are quarantined)"
    ),
    "401": _json(_ref("ErrorBody"), "missing or unknown write key"),
    "413": _json(_ref("ErrorBody"), "body over 4 MB after decompression"),
    "415": _json(_ref("ErrorBody"), "unsupported Content-Type or Content-Encoding"),
    "503": _json(_ref("ErrorBody"), "overloaded or store unavailable; retry after the Retry-After header"),
}
_ADMIN_ERRORS = {"401": _json(_ref("ErrorBody"), "missing or unknown admin token")}


def _collect_op(kind: str) -> dict[str, Any]:
    body = _ref("BatchDoc") if kind == "batch" else _ref("MessageDoc")
    return {
        "post": {
            "tags": ["collect"],
            "summary": f"Segment-compatible {kind}",
            "security": [{"writeKeyBasic": []}, {"writeKeyHeader": []}, {}],
            "requestBody": {"required": True, "content": {"application/json": {"schema": body}}},
            "responses": {"200": _json(_ref("CollectResult"), "stored durably"), **_ERRORS},
        }
    }


def _admin_op(
    summary: str,
    ok: dict[str, Any],
    params: list[dict[str, Any]] | None = None,
    method: str = "get",
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    op: dict[str, Any] = {
        "tags": ["admin"],
        "summary": summary,
        "security": [{"adminToken": []}],
        "responses": {"200": _json(ok, "success"), **_ADMIN_ERRORS, **(extra or {})},
    }
    if params:
        op["parameters"] = params
    return {method: op}


def _query(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema}


_ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}


class OverrideList(msgspec.Struct):
    """Every split users made."""

    overrides: list[Override]


def _profile_paths(paths: dict[str, Any], not_found: dict[str, Any]) -> None:
    bad = {"400": _json(_ref("ErrorBody"), "the identifier or request is invalid")}
    pid = {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
    identifier = {
        "name": "identifier",
        "in": "query",
        "required": True,
        "description": "TYPE:VALUE, such as email:ana@example.org (normalised like stored values)",
        "schema": {"type": "string"},
    }
    paths["/api/v1/profiles"] = _admin_op(
        "The unified profile holding an identifier", _ref("Profile"), [identifier], extra={**bad, **not_found}
    )
    paths["/api/v1/profiles/{id}"] = _admin_op(
        "A profile by id (an absorbed id resolves to the surviving profile)",
        _ref("Profile"),
        [pid],
        extra=not_found,
    )
    paths["/api/v1/profiles/{id}/identity"] = _admin_op(
        "A profile's identifiers and every edge touching them, with evidence",
        _ref("IdentityExplanation"),
        [pid],
        extra=not_found,
    )
    split = _admin_op(
        "Split a profile: remove an edge or block an identifier",
        _ref("SplitResult"),
        [pid],
        method="post",
        extra={**bad, **not_found},
    )
    split["post"]["requestBody"] = {
        "required": True,
        "content": {"application/json": {"schema": _ref("SplitRequest")}},
    }
    paths["/api/v1/profiles/{id}/identity/split"] = split
    paths["/api/v1/identity/overrides"] = _admin_op("Every split users made", _ref("OverrideList"))


def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.1 document of the HTTP API."""
    _, components = msgspec.json.schema_components(
        [
            MessageDoc,
            BatchDoc,
            CollectResult,
            ErrorBody,
            EventList,
            QuarantineList,
            QuarantineEntry,
            Profile,
            IdentityExplanation,
            SplitRequest,
            SplitResult,
            OverrideList,
            *DEFINITION_TYPES,
            *privacy_openapi.SCHEMA_TYPES,
            *console_openapi.SCHEMA_TYPES,
            *MESSAGING_SCHEMAS,
            *JOURNEY_SCHEMAS,
        ],
        ref_template="#/components/schemas/{name}",
    )
    not_found = {"404": _json(_ref("ErrorBody"), "no such entry")}
    conflict = {"409": _json(_ref("ErrorBody"), "the entry is not open")}
    paths: dict[str, Any] = {f"/v1/{kind}": _collect_op(kind) for kind in (*SINGLE_ENDPOINTS, "batch")}
    paths["/healthz"] = {
        "get": {
            "tags": ["admin"],
            "summary": "Liveness and readiness",
            "responses": {
                "200": _json({"type": "object"}, "ready"),
                "503": _json({"type": "object"}, "not ready"),
            },
        }
    }
    paths["/openapi.json"] = {
        "get": {
            "tags": ["admin"],
            "summary": "This document",
            "responses": {"200": _json({"type": "object"}, "")},
        }
    }
    paths["/api/v1/stats"] = _admin_op("Event counts and processor lag", {"type": "object"})
    paths["/api/v1/events"] = _admin_op(
        "Recent events, newest first",
        _ref("EventList"),
        [
            _query("limit", {"type": "integer", "minimum": 1, "maximum": 1000}),
            _query("type", {"type": "string"}),
            _query("source_id", {"type": "string"}),
        ],
        extra={"400": _json(_ref("ErrorBody"), "bad parameter")},
    )
    paths["/api/v1/quarantine"] = _admin_op(
        "Quarantined messages",
        _ref("QuarantineList"),
        [
            _query("status", {"enum": ["open", "replayed", "discarded", "all"]}),
            _query("limit", {"type": "integer", "minimum": 1, "maximum": 1000}),
        ],
        extra={"400": _json(_ref("ErrorBody"), "bad parameter")},
    )
    paths["/api/v1/quarantine/{id}"] = _admin_op(
        "One quarantined message", _ref("QuarantineEntry"), [_ID], extra=not_found
    )
    replay = _admin_op(
        "Replay a quarantined message, optionally corrected by the request body",
        {"type": "object"},
        [_ID],
        method="post",
        extra={**not_found, **conflict, "422": _json(_ref("ErrorBody"), "still invalid")},
    )
    replay["post"]["requestBody"] = {
        "required": False,
        "content": {"application/json": {"schema": _ref("MessageDoc")}},
    }
    paths["/api/v1/quarantine/{id}/replay"] = replay
    paths["/api/v1/quarantine/{id}/discard"] = _admin_op(
        "Discard a quarantined message",
        {"type": "object"},
        [_ID],
        method="post",
        extra={**not_found, **conflict},
    )
    _profile_paths(paths, not_found)
    definition_paths(paths)
    paths.update(connector_paths())
    analytics_paths(paths)
    privacy_openapi.add_paths(paths)
    paths.update(console_openapi.console_paths())
    paths.update(console_openapi.console_pages())
    paths.update(messaging_paths())
    paths.update(journey_paths())
    return {
        "openapi": "3.1.0",
        "info": {"title": "Tailor", "version": __version__, "description": "Customer data platform API"},
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "writeKeyBasic": {
                    "type": "http",
                    "scheme": "basic",
                    "description": "write key as the username",
                },
                "writeKeyHeader": {"type": "apiKey", "in": "header", "name": "X-Write-Key"},
                "adminToken": {"type": "http", "scheme": "bearer"},
            },
        },
    }
