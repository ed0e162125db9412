"""The OpenAPI description of the privacy and access endpoints."""

from __future__ import annotations

from typing import Any

from tailor.access.api import NewToken, NewUser, Revoke, SignIn
from tailor.access.audit import AuditEntry
from tailor.access.store import TokenInfo
from tailor.privacy.api import ConsentRequest, PersonRequest
from tailor.privacy.compaction import Compaction
from tailor.privacy.decisions import ConsentDecision, ConsentRecord
from tailor.privacy.export import ExportDocument
from tailor.privacy.retention import RetentionResult
from tailor.privacy.service import ErasureRecord, ErasureResult

SCHEMA_TYPES: tuple[Any, ...] = (
    ConsentRequest,
    PersonRequest,
    ConsentDecision,
    ConsentRecord,
    ExportDocument,
    ErasureResult,
    ErasureRecord,
    Compaction,
    RetentionResult,
    SignIn,
    NewUser,
    NewToken,
    Revoke,
    AuditEntry,
    TokenInfo,
)


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_ERR = _ref("ErrorBody")
_AUTH = {
    "401": _json(_ERR, "missing, unknown or revoked token, or expired session"),
    "403": _json(_ERR, "the credential lacks the scope (or a session's CSRF token is missing)"),
    "429": _json(_ERR, "over the credential's rate limit; retry after the Retry-After header"),
}


def _op(
    summary: str,
    scope: str | None,
    ok: dict[str, Any],
    method: str,
    body: str | None = None,
    params: list[dict[str, Any]] | None = None,
    errors: dict[str, str] | None = None,
) -> dict[str, Any]:
    op: dict[str, Any] = {
        "tags": ["privacy" if scope in ("privacy", "read") else "access"],
        "summary": summary + (f" (scope: {scope})" if scope else ""),
        "responses": {"200": _json(ok, "success"), **({} if scope is None else _AUTH)},
    }
    if scope is not None:
        op["security"] = [{"adminToken": []}]
    for status, text in (errors or {}).items():
        op["responses"][status] = _json(_ERR, text)
    if body is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": _ref(body)}}}
    if params:
        op["parameters"] = params
    return {method: op}


def _q(name: str, required: bool = True) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": required, "schema": {"type": "string"}}


def add_paths(paths: dict[str, Any]) -> None:
    """Adds the privacy and access paths to an OpenAPI `paths` object."""
    bad = {"400": "invalid body, identifier or consent payload (each bad field named)"}
    lookup = {**bad, "404": "no profile holds the identifier", "409": "the person was erased"}
    obj = {"type": "object"}
    paths["/api/v1/consents"] = {
        **_op("Record a consent statement", "privacy", obj, "post", "ConsentRequest", errors=bad),
        **_op(
            "Current consent and history of a person",
            "read",
            obj,
            "get",
            params=[_q("identifier")],
            errors=lookup,
        ),
    }
    paths["/api/v1/consents/decision"] = _op(
        "Whether a purpose on a channel is allowed now, and why",
        "read",
        _ref("ConsentDecision"),
        "get",
        params=[_q("identifier", False), _q("profile_id", False), _q("purpose"), _q("channel")],
        errors=lookup,
    )
    paths["/api/v1/privacy/export"] = _op(
        "Everything held about one person (JSON, or zipped JSON Lines)",
        "privacy",
        _ref("ExportDocument"),
        "post",
        "PersonRequest",
        errors=lookup,
    )
    paths["/api/v1/privacy/erase"] = _op(
        "Erase one person everywhere (tombstone, audit record, compaction)",
        "privacy",
        _ref("ErasureResult"),
        "post",
        "PersonRequest",
        errors=lookup,
    )
    paths["/api/v1/privacy/erasures"] = _op("Audit records of erasures", "privacy", obj, "get")
    paths["/api/v1/privacy/compact"] = _op(
        "Remove the bytes of deleted rows", "privacy", _ref("Compaction"), "post"
    )
    paths["/api/v1/privacy/retention"] = _op(
        "Apply the retention rules now", "privacy", _ref("RetentionResult"), "post"
    )
    paths["/api/v1/sessions"] = _op(
        "Sign in to the console (sets the session cookie, returns the CSRF token)",
        None,
        obj,
        "post",
        "SignIn",
        errors={"400": "invalid body", "401": "unknown user or wrong password", "429": "too many attempts"},
    )
    paths["/api/v1/sessions/current"] = {
        **_op("Who the credential is", "read", obj, "get"),
        **_op(
            "Sign out",
            None,
            obj,
            "delete",
            errors={"400": "not a session", "401": "no session", "403": "no CSRF token"},
        ),
    }
    paths["/api/v1/users"] = _op("Create a console user", "admin", obj, "post", "NewUser", errors=bad)
    paths["/api/v1/tokens"] = {
        **_op("Create a scoped admin token", "admin", obj, "post", "NewToken", errors=bad),
        **_op("List admin tokens", "admin", obj, "get"),
    }
    paths["/api/v1/tokens/revoke"] = _op(
        "Revoke tokens by prefix or name",
        "admin",
        obj,
        "post",
        "Revoke",
        errors={**bad, "404": "no such token"},
    )
    paths["/api/v1/audit"] = _op(
        "The audit log of admin actions", "admin", obj, "get", params=[_q("limit", False)], errors=bad
    )
