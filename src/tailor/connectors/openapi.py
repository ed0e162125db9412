"""The OpenAPI description of the connectors' routes."""

from __future__ import annotations

from typing import Any

_NAME = {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
_ERROR = {"$ref": "#/components/schemas/ErrorBody"}


def _answer(description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": schema or {"type": "object"}}},
    }


def _op(summary: str, ok: str, params: bool = True, body: bool = False, admin: bool = True) -> dict[str, Any]:
    op: dict[str, Any] = {
        "tags": ["connectors"],
        "summary": summary,
        "responses": {"200": _answer(ok)},
    }
    if admin:
        op["security"] = [{"adminToken": []}]
        op["responses"]["401"] = _answer("missing or unknown admin token", _ERROR)
    if params:
        op["parameters"] = [_NAME]
        op["responses"]["404"] = _answer("no such connector", _ERROR)
    if body:
        op["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": {"type": "object"}}},
        }
        op["responses"]["400"] = _answer("the body is not a usable declaration or payload", _ERROR)
    return op


def connector_paths() -> dict[str, Any]:
    """The paths of the connectors' routes."""
    webhook = _op(
        "Inbound webhook: a JSON payload signed with HMAC-SHA256 in X-Tailor-Signature (sha256=<hex>)",
        "stored; {success, stored, duplicates, rejected}",
        body=True,
        admin=False,
    )
    webhook["responses"]["401"] = _answer("missing or wrong signature", _ERROR)
    webhook["responses"]["503"] = _answer("overloaded or store unavailable; retry", _ERROR)
    return {
        "/api/v1/connectors": {"get": _op("Every connector: last run, lag, counts, errors", "status", False)},
        "/api/v1/connectors/{name}": {
            "put": _op("Declare or replace a connector (the shape of its TOML file)", "declared", body=True),
            "delete": _op("Remove a connector's declaration", "deleted"),
        },
        "/api/v1/connectors/{name}/runs": {"get": _op("A connector's run history, newest first", "runs")},
        "/api/v1/connectors/{name}/run": {"post": _op("Run a connector now", "the run")},
        "/v1/webhooks/{name}": {"post": webhook},
    }
