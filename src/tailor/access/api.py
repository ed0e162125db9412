"""The access API: console sign-in and sign-out, users, scoped tokens and the audit log."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tailor.access.store import AccessError
from tailor.api.auth import CSRF_HEADER, SESSION_COOKIE, authenticate, requires
from tailor.collect.body import RequestError, read_body
from tailor.collect.routes import error_response, json_response

if TYPE_CHECKING:
    from tailor.access.control import AccessControl


class SignIn(msgspec.Struct, forbid_unknown_fields=True):
    """A console user's credentials."""

    username: str
    password: str


class NewUser(msgspec.Struct, forbid_unknown_fields=True):
    """A console user to create; scopes comma-separated (read, definitions, privacy, admin)."""

    username: str
    password: str
    scopes: str = "read"


class NewToken(msgspec.Struct, forbid_unknown_fields=True):
    """An admin token to create."""

    name: str
    scopes: str = "read"


class Revoke(msgspec.Struct, forbid_unknown_fields=True):
    """Tokens to revoke, by prefix (at_xxxxx) or name."""

    token: str


def _access(request: Request) -> AccessControl:
    access: AccessControl = request.app.state.runtime.access
    return access


async def _decode(request: Request, kind: type[Any]) -> Any:
    raw = await read_body(request, 16 * 1024)
    try:
        return msgspec.json.decode(raw or b"{}", type=kind)
    except (msgspec.ValidationError, msgspec.DecodeError) as e:
        raise RequestError(400, "invalid_body", str(e)) from e


async def sign_in(request: Request) -> Response:
    """Checks a password; sets the session cookie and answers with the session's CSRF token."""
    access = _access(request)
    client = request.client.host if request.client else "unknown"
    wait = access.admin_limits.take(f"signin:{client}")
    if wait is not None:
        return error_response(429, "rate_limited", "too many sign-in attempts", retry_after=wait)
    try:
        body: SignIn = await _decode(request, SignIn)
        session, csrf = await asyncio.to_thread(
            access.store.sign_in, body.username, body.password, access.config.session_hours
        )
    except RequestError as e:
        return error_response(e.status, e.code, e.message)
    except AccessError as e:
        access.audit.record("anonymous", "POST /api/v1/sessions", 401, detail="sign-in refused")
        return error_response(401, "unauthorized", str(e))
    access.audit.record(f"user:{body.username}", "POST /api/v1/sessions", 200)
    response = json_response(200, {"username": body.username, "csrf_token": csrf, "csrf_header": CSRF_HEADER})
    response.set_cookie(
        SESSION_COOKIE,
        session,
        max_age=int(access.config.session_hours * 3600),
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


@requires("read")
async def whoami(request: Request) -> Response:
    """The signed-in user or token, with its scopes."""
    p = request.state.principal
    return json_response(200, {"kind": p.kind, "name": p.name, "scopes": sorted(p.scopes)})


async def sign_out(request: Request) -> Response:
    """Ends the console session (with its CSRF token)."""
    principal, _, failure = authenticate(request)
    if failure is not None:
        return failure
    session = request.cookies.get(SESSION_COOKIE)
    if principal is None or principal.kind != "user" or not session:
        return error_response(400, "not_a_session", "only a console session can sign out")
    await asyncio.to_thread(_access(request).store.sign_out, session)
    _access(request).audit.record(f"user:{principal.name}", "DELETE /api/v1/sessions/current", 200)
    response = json_response(200, {"signed_out": True})
    response.delete_cookie(SESSION_COOKIE)
    return response


@requires("admin")
async def create_user(request: Request) -> Response:
    """Creates a console user."""
    try:
        body: NewUser = await _decode(request, NewUser)
        await asyncio.to_thread(_access(request).store.add_user, body.username, body.password, body.scopes)
    except RequestError as e:
        return error_response(e.status, e.code, e.message)
    except (AccessError, ValueError) as e:
        return error_response(400, "invalid_user", str(e))
    return json_response(200, {"username": body.username, "scopes": body.scopes})


@requires("admin")
async def create_token(request: Request) -> Response:
    """Creates an admin token with scopes; the token is shown only in this answer."""
    try:
        body: NewToken = await _decode(request, NewToken)
        token = await asyncio.to_thread(_access(request).store.add_token, body.name, body.scopes)
    except RequestError as e:
        return error_response(e.status, e.code, e.message)
    except ValueError as e:
        return error_response(400, "invalid_scopes", str(e))
    _access(request).refresh()
    return json_response(200, {"name": body.name, "token": token, "scopes": body.scopes})


@requires("admin")
async def list_tokens(request: Request) -> Response:
    """Every admin token: name, prefix, scopes, whether revoked."""
    return json_response(200, {"tokens": await asyncio.to_thread(_access(request).store.tokens)})


@requires("admin")
async def revoke_token(request: Request) -> Response:
    """Revokes tokens by prefix or name, at once."""
    try:
        body: Revoke = await _decode(request, Revoke)
    except RequestError as e:
        return error_response(e.status, e.code, e.message)
    n = await asyncio.to_thread(_access(request).store.revoke_token, body.token)
    if not n:
        return error_response(404, "not_found", "no live token has that prefix or name")
    _access(request).refresh()
    return json_response(200, {"revoked": n})


@requires("admin")
async def audit_log(request: Request) -> Response:
    """The latest admin actions, newest first."""
    raw = request.query_params.get("limit", "100")
    if not raw.isdigit() or not 1 <= int(raw) <= 10_000:
        return error_response(400, "bad_parameter", "limit must be a whole number from 1 to 10000")
    entries = await asyncio.to_thread(_access(request).audit.entries, int(raw))
    return json_response(200, {"entries": entries})


def access_routes() -> list[Route]:
    """The routes of the access API."""
    return [
        Route("/api/v1/sessions", sign_in, methods=["POST"]),
        Route("/api/v1/sessions/current", whoami, methods=["GET"]),
        Route("/api/v1/sessions/current", sign_out, methods=["DELETE"]),
        Route("/api/v1/users", create_user, methods=["POST"]),
        Route("/api/v1/tokens", create_token, methods=["POST"]),
        Route("/api/v1/tokens", list_tokens, methods=["GET"]),
        Route("/api/v1/tokens/revoke", revoke_token, methods=["POST"]),
        Route("/api/v1/audit", audit_log, methods=["GET"]),
    ]
