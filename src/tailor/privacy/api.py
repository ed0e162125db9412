"""The privacy API: consent (record, read, decide), access export, erasure, retention, compaction."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Literal

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tailor.api.auth import requires
from tailor.collect.body import RequestError, read_body
from tailor.collect.routes import error_response, json_response
from tailor.identity.service import BadIdentifierError, NotFoundError
from tailor.privacy.exceptions import AlreadyErasedError, ConsentPayloadError, PersonNotFoundError
from tailor.privacy.export import to_json, to_zip

if TYPE_CHECKING:
    from tailor.privacy.service import PrivacyService

_MAX_BODY = 64 * 1024


class ConsentRequest(msgspec.Struct, forbid_unknown_fields=True):
    """Record a consent statement for the person holding `identifier` (TYPE:VALUE)."""

    identifier: str
    purpose: str
    status: str
    """granted, denied or withdrawn."""
    channel: str | None = None
    channels: list[str] | None = None
    legal_basis: str = "consent"
    source: str | None = None
    """Where the person gave it (a form, a call, a paper record)."""


class PersonRequest(msgspec.Struct, forbid_unknown_fields=True):
    """Which person: any identifier of theirs as TYPE:VALUE (email:ana@example.org, profile:ID, ...)."""

    identifier: str
    format: Literal["json", "zip"] = "json"
    """For exports: one JSON document, or a zip of JSON Lines files (one per table)."""


def _service(request: Request) -> PrivacyService:
    service: PrivacyService = request.app.state.runtime.privacy
    return service


async def _body(request: Request, kind: type[Any]) -> Any:
    raw = await read_body(request, _MAX_BODY)
    try:
        return msgspec.json.decode(raw or b"{}", type=kind)
    except msgspec.ValidationError as e:
        raise RequestError(400, "invalid_body", str(e)) from e
    except msgspec.DecodeError as e:
        raise RequestError(400, "invalid_body", f"the body is not JSON: {e}") from e


async def _answer(work: Callable[[], Awaitable[Response]]) -> Response:
    """Maps privacy and identity errors to their statuses."""
    try:
        return await work()
    except RequestError as e:
        return error_response(e.status, e.code, e.message)
    except ConsentPayloadError as e:
        return error_response(400, "invalid_consent", str(e), errors=e.errors)
    except BadIdentifierError as e:
        return error_response(400, "bad_identifier", str(e))
    except AlreadyErasedError as e:
        return error_response(409, "already_erased", str(e))
    except (PersonNotFoundError, NotFoundError) as e:
        return error_response(404, "not_found", str(e))


@requires("privacy")
async def record_consent(request: Request) -> Response:
    """Stores a consent statement as a `Consent Updated` event; answers with the current consent."""

    async def work() -> Response:
        body: ConsentRequest = await _body(request, ConsentRequest)
        statement: dict[str, object] = {
            "purpose": body.purpose,
            "status": body.status,
            "legal_basis": body.legal_basis,
        }
        if body.channels is not None:
            statement["channels"] = body.channels
        elif body.channel is not None:
            statement["channel"] = body.channel
        if body.source is not None:
            statement["source"] = body.source
        service = _service(request)
        seq = await asyncio.to_thread(service.record_consent, body.identifier, statement)
        pid = await asyncio.to_thread(service.resolve, body.identifier)
        current = await asyncio.to_thread(service.consent.current, pid)
        return json_response(200, {"seq": seq, "profile_id": pid, "consent": current})

    return await _answer(work)


@requires("read")
async def read_consent(request: Request) -> Response:
    """The current consent and full history of the person holding `?identifier=`."""

    async def work() -> Response:
        identifier = request.query_params.get("identifier")
        if not identifier:
            raise RequestError(400, "bad_parameter", "identifier=TYPE:VALUE is required")
        service = _service(request)
        pid = await asyncio.to_thread(service.resolve, identifier)
        current = await asyncio.to_thread(service.consent.current, pid)
        history = await asyncio.to_thread(service.consent.history, pid)
        return json_response(200, {"profile_id": pid, "consent": current, "history": history})

    return await _answer(work)


@requires("read")
async def consent_decision(request: Request) -> Response:
    """`consent_for(profile, purpose, channel)`: allowed or not, and why."""

    async def work() -> Response:
        q = request.query_params
        missing = [n for n in ("purpose", "channel") if not q.get(n)]
        if missing or not (q.get("identifier") or q.get("profile_id")):
            raise RequestError(
                400, "bad_parameter", "identifier (or profile_id), purpose and channel are required"
            )
        service = _service(request)
        pid = q.get("profile_id") or await asyncio.to_thread(service.resolve, str(q.get("identifier")))
        decision = await asyncio.to_thread(service.consent_for, str(pid), q["purpose"], q["channel"])
        return json_response(200, decision)

    return await _answer(work)


@requires("privacy")
async def export_person(request: Request) -> Response:
    """Everything held about one person, as JSON or a zip of JSON Lines."""

    async def work() -> Response:
        body: PersonRequest = await _body(request, PersonRequest)
        doc = await asyncio.to_thread(_service(request).export, body.identifier)
        if body.format == "zip":
            data = await asyncio.to_thread(to_zip, doc)
            headers = {"Content-Disposition": f'attachment; filename="{doc.profile_id}.zip"'}
            return Response(data, 200, headers, media_type="application/zip")
        return Response(await asyncio.to_thread(to_json, doc), 200, media_type="application/json")

    return await _answer(work)


@requires("privacy")
async def erase_person(request: Request) -> Response:
    """Erases one person everywhere; 409 when they were erased already."""

    async def work() -> Response:
        body: PersonRequest = await _body(request, PersonRequest)
        principal = request.state.principal
        actor = f"{principal.kind}:{principal.name}"
        result = await asyncio.to_thread(_service(request).erase, body.identifier, actor)
        return json_response(200, result)

    return await _answer(work)


@requires("privacy")
async def list_erasures(request: Request) -> Response:
    """The audit records of every erasure (no personal data)."""
    return json_response(200, {"erasures": await asyncio.to_thread(_service(request).erasures)})


@requires("privacy")
async def run_compaction(request: Request) -> Response:
    """Rewrites storage so that the bytes of everything deleted leave the data directory."""
    return json_response(200, await asyncio.to_thread(_service(request).compact))


@requires("privacy")
async def run_retention(request: Request) -> Response:
    """Applies the retention rules now."""
    return json_response(200, await asyncio.to_thread(_service(request).retain))


def privacy_routes() -> list[Route]:
    """The routes of the privacy API."""
    return [
        Route("/api/v1/consents", record_consent, methods=["POST"]),
        Route("/api/v1/consents", read_consent, methods=["GET"]),
        Route("/api/v1/consents/decision", consent_decision, methods=["GET"]),
        Route("/api/v1/privacy/export", export_person, methods=["POST"]),
        Route("/api/v1/privacy/erase", erase_person, methods=["POST"]),
        Route("/api/v1/privacy/erasures", list_erasures, methods=["GET"]),
        Route("/api/v1/privacy/compact", run_compaction, methods=["POST"]),
        Route("/api/v1/privacy/retention", run_retention, methods=["POST"]),
    ]
