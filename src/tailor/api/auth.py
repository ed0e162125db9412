"""Authenticating admin requests: bearer tokens or console sessions, scopes, rate limits, audit.

`requires(scope)` guards an endpoint: 401 without a valid credential, 403 when the credential
lacks the scope, 429 with Retry-After over the credential's rate limit, and every request it lets
through or refuses for scope is written to the audit log (route template, never the query).
A console session is the `tailor_session` cookie; unsafe methods must also send its CSRF token
in `X-CSRF-Token` (a cross-site form cannot read it, so it cannot forge the request).
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from functools import wraps
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response

from tailor.access.scopes import grants
from tailor.access.store import Principal, digest
from tailor.collect.routes import error_response

if TYPE_CHECKING:
    from tailor.runtime import Runtime

Endpoint = Callable[[Request], Awaitable[Response]]
SESSION_COOKIE = "tailor_session"
CSRF_HEADER = "x-csrf-token"
_SAFE = frozenset({"GET", "HEAD", "OPTIONS"})


def _route(request: Request) -> str:
    route = request.scope.get("route")
    return str(getattr(route, "path", request.url.path))


def authenticate(request: Request) -> tuple[Principal | None, str | None, Response | None]:
    """The principal of a request and its rate-limit key, or the error response to send."""
    runtime: Runtime = request.app.state.runtime
    access = runtime.access
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        principal = access.token(token.strip())
        if principal is None:
            return None, None, error_response(401, "unauthorized", "unknown or revoked admin token")
        return principal, "t:" + digest(token.strip()), None
    session = request.cookies.get(SESSION_COOKIE)
    if session:
        principal = access.store.session(session)
        if principal is None:
            return (
                None,
                None,
                error_response(401, "unauthorized", "the console session has expired; sign in again"),
            )
        if request.method not in _SAFE:
            sent = request.headers.get(CSRF_HEADER, "")
            if not sent or not hmac.compare_digest(digest(sent), principal.session_csrf or ""):
                return (
                    None,
                    None,
                    error_response(
                        403, "csrf", f"a console session must send its CSRF token in {CSRF_HEADER.upper()}"
                    ),
                )
        return principal, "s:" + digest(session), None
    return (
        None,
        None,
        error_response(
            401,
            "unauthorized",
            "an admin token is required as `Authorization: Bearer` (or a console session)",
        ),
    )


def requires(scope: str) -> Callable[[Endpoint], Endpoint]:
    """Guards an endpoint: a token or session holding `scope` (or `admin`), within its rate limit."""

    def wrap(endpoint: Endpoint) -> Endpoint:
        @wraps(endpoint)
        async def guarded(request: Request) -> Response:
            runtime: Runtime = request.app.state.runtime
            principal, key, failure = authenticate(request)
            action = f"{request.method} {_route(request)}"
            if failure is not None or principal is None or key is None:
                return failure or error_response(401, "unauthorized", "not signed in")
            wait = runtime.access.admin_limits.take(key)
            if wait is not None:
                return error_response(
                    429,
                    "rate_limited",
                    f"over {runtime.access.config.token_rate:g} requests/s",
                    retry_after=wait,
                )
            actor = f"{principal.kind}:{principal.name}"
            target = ",".join(f"{k}={v}" for k, v in sorted(request.path_params.items())) or None
            if not grants(principal.scopes, scope):
                runtime.access.audit.record(actor, action, 403, target, f"needs scope {scope}")
                return error_response(
                    403,
                    "forbidden",
                    f"this needs the {scope!r} scope; the credential holds"
                    f" {', '.join(sorted(principal.scopes))}",
                )
            request.state.principal = principal
            response = await endpoint(request)
            runtime.access.audit.record(actor, action, response.status_code, target)
            return response

        return guarded

    return wrap
