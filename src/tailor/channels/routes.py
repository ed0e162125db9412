"""HTTP routes of messaging: public tracking links, and the admin API for messages and templates."""

from __future__ import annotations

import asyncio
import html
import urllib.parse
from typing import TYPE_CHECKING, Any

import msgspec
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from tailor.api.admin import admin
from tailor.channels.bounces import parse_dsn
from tailor.channels.exceptions import OutboxError, TemplateError, TokenError, UnknownTemplateError
from tailor.channels.outbox import STATUSES, Outbox, OutboxMessage, message_id_for
from tailor.channels.schemas import (
    Attempt,
    BounceOutcome,
    BounceResult,
    Enqueued,
    MessageDetail,
    MessageList,
    MessagingStats,
    Preview,
    PreviewRequest,
    Problem,
    TemplateRejected,
    TemplateSaved,
)
from tailor.channels.store import transaction
from tailor.channels.templates import CompiledTemplate, TemplateDefinition
from tailor.collect.body import RequestError, read_body
from tailor.collect.routes import error_response, json_response

if TYPE_CHECKING:
    from tailor.channels.service import Messaging

PIXEL = bytes.fromhex(
    "47494638396101000100800000000000ffffff21f90401000000002c00000000010001000002024401003b"
)
"""A transparent 1x1 GIF (43 bytes)."""
_NO_STORE = {"Cache-Control": "no-store, private", "Referrer-Policy": "no-referrer"}
MAX_BODY = 1024 * 1024


def _messaging(request: Request) -> Messaging:
    messaging: Messaging = request.app.state.runtime.messaging
    return messaging


def _client(request: Request) -> str | None:
    return request.client.host if request.client else None


def _bad_link(e: TokenError) -> Response:
    # Never a redirect on a bad token: that would make this server an open redirector.
    page = f"<!doctype html><title>Invalid link</title><p>{html.escape(str(e))}.</p>"
    return HTMLResponse(page, 400, headers=_NO_STORE)


async def click(request: Request) -> Response:
    """The click redirect: records the click and sends the browser to the link's target."""
    m = _messaging(request)
    ua = request.headers.get("user-agent", "")
    try:
        url, _ = await asyncio.to_thread(
            m.tracker.click, request.path_params["token"], _client(request), ua, request.method
        )
    except TokenError as e:
        return _bad_link(e)
    return RedirectResponse(url, 302, headers=_NO_STORE)


async def open_pixel(request: Request) -> Response:
    """The open pixel: records an open and answers a transparent GIF."""
    m = _messaging(request)
    ua = request.headers.get("user-agent", "")
    try:
        await asyncio.to_thread(
            m.tracker.open, request.path_params["token"], _client(request), ua, request.method
        )
    except TokenError as e:
        return _bad_link(e)
    return Response(PIXEL, 200, headers=_NO_STORE, media_type="image/gif")


async def unsubscribe(request: Request) -> Response:
    """One-click unsubscribe (RFC 8058): GET shows a page with a button; POST unsubscribes."""
    m = _messaging(request)
    token = request.path_params["token"]
    if request.method == "GET":
        try:
            m.links.read_unsubscribe(token)
        except TokenError as e:
            return _bad_link(e)
        page = (
            "<!doctype html><title>Unsubscribe</title><form method=post>"
            '<input type=hidden name="List-Unsubscribe" value="One-Click">'
            "<p>Stop receiving these messages?</p><button type=submit>Unsubscribe</button></form>"
        )
        return HTMLResponse(page, headers=_NO_STORE)
    try:
        found = await asyncio.to_thread(m.tracker.unsubscribe, token)
    except TokenError as e:
        return _bad_link(e)
    if found is None:
        return HTMLResponse("<!doctype html><p>This message is no longer kept; nothing was changed.</p>", 410)
    return HTMLResponse(
        "<!doctype html><title>Unsubscribed</title><p>You are unsubscribed.</p>", headers=_NO_STORE
    )


async def sms_receipt(request: Request) -> Response:
    """An SMS provider's delivery receipt (a form or JSON POST to the status callback URL)."""
    m = _messaging(request)
    sms = m.config.sms
    try:
        body = await _raw_body(request)
    except RequestError as e:
        return error_response(e.status, e.code, e.message)
    if request.headers.get("content-type", "").startswith("application/json"):
        try:
            fields = {k: str(v) for k, v in msgspec.json.decode(body, type=dict[str, Any]).items()}
        except (msgspec.DecodeError, msgspec.ValidationError) as e:
            return error_response(400, "invalid_body", f"the receipt is not a JSON object: {e}")
    else:
        fields = dict(urllib.parse.parse_qsl(body.decode("utf-8", "replace")))
    status = fields.get(sms.status_field)
    if status is None:
        return error_response(400, "invalid_body", f"the receipt has no {sms.status_field!r} field")
    delivered, failed = status in sms.delivered_statuses, status in sms.failed_statuses
    try:
        done = await asyncio.to_thread(
            m.tracker.sms_receipt,
            request.path_params["token"],
            status,
            fields.get(sms.error_field),
            delivered,
            failed,
        )
    except TokenError as e:
        return error_response(400, "invalid_token", str(e))
    return json_response(200, {"outcome": done})


async def _raw_body(request: Request) -> bytes:
    """A body of any content type (a DSN, a provider's form post), at most MAX_BODY bytes."""
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise RequestError(413, "request_too_large", f"body exceeds the {MAX_BODY}-byte limit")
        chunks.append(chunk)
    return b"".join(chunks)


def _rejected(e: TemplateError, status: int = 422) -> Response:
    problems = [Problem(p.part, p.line, p.message) for p in e.problems]
    return json_response(status, TemplateRejected("invalid_template", str(e), problems))


async def _json(request: Request, kind: type[Any]) -> Any:
    body = await read_body(request, MAX_BODY)
    try:
        return msgspec.json.decode(body, type=kind)
    except msgspec.ValidationError as e:
        raise RequestError(400, "invalid_body", str(e)) from e
    except msgspec.DecodeError as e:
        raise RequestError(400, "invalid_body", f"the body is not JSON: {e}") from e


@admin
async def enqueue(request: Request) -> Response:
    """Enqueues one message (its own transaction)."""
    m = _messaging(request)
    try:
        message: OutboxMessage = await _json(request, OutboxMessage)
        with m.lock, transaction(m.conn) as conn:
            created = m.outbox.enqueue_many(conn, [message])
    except RequestError as e:
        return error_response(e.status, e.code, e.message)
    except OutboxError as e:
        return error_response(422, "invalid_message", str(e), errors=e.errors)
    m.notify()
    return json_response(200, Enqueued(message_id_for(message.key), created == 1))


@admin
async def list_messages(request: Request) -> Response:
    """Messages, newest first, by status or campaign."""
    m = _messaging(request)
    status = request.query_params.get("status")
    if status is not None and status not in STATUSES:
        return error_response(400, "bad_parameter", f"status must be one of {list(STATUSES)}")
    raw_limit = request.query_params.get("limit", "100")
    if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= 1000:
        return error_response(400, "bad_parameter", "limit must be a whole number from 1 to 1000")
    with m.lock:
        found = Outbox.recent(m.conn, status, request.query_params.get("campaign_id"), int(raw_limit))
    return json_response(200, MessageList(found))


@admin
async def get_message(request: Request) -> Response:
    """One message with its failed attempts."""
    m = _messaging(request)
    with m.lock:
        found = Outbox.get(m.conn, request.path_params["id"])
        attempts = Outbox.attempts(m.conn, request.path_params["id"])
    if found is None:
        return error_response(404, "not_found", "no such message")
    return json_response(200, MessageDetail(found, [Attempt(*a) for a in attempts]))


@admin
async def retry_message(request: Request) -> Response:
    """Queues a failed, dead or bounced message again (the operator fixed the cause)."""
    m = _messaging(request)
    mid = request.path_params["id"]
    with m.lock, transaction(m.conn) as conn:
        found = Outbox.get(conn, mid)
        if found is None:
            return error_response(404, "not_found", "no such message")
        if found.status not in ("failed", "dead", "bounced"):
            return error_response(
                409,
                "not_retryable",
                f"the message is {found.status}; only failed, dead or bounced ones are retried",
            )
        conn.execute(
            "UPDATE outbox SET status = 'queued', next_attempt_at = ?, max_attempts = attempts + 1,"
            " handed_over_at = NULL, sent_at = NULL WHERE message_id = ?",
            (m.clock(), mid),
        )
    m.notify()
    return json_response(200, {"message_id": mid, "status": "queued"})


@admin
async def bounces(request: Request) -> Response:
    """Takes a bounce (a DSN as raw RFC 5322 bytes) and applies it to the messages it reports."""
    m = _messaging(request)
    try:
        raw = await _raw_body(request)
    except RequestError as e:
        return error_response(e.status, e.code, e.message)
    found = parse_dsn(raw)
    if not found:
        return error_response(
            422, "not_a_bounce", "no recipient status found: not a delivery status notification"
        )
    done = await asyncio.to_thread(m.tracker.bounces, found)
    return json_response(
        200, BounceResult([BounceOutcome(b.message_id, b.address, b.action, b.status, o) for b, o in done])
    )


@admin
async def stats(request: Request) -> Response:
    """Messages per status and the dispatcher's state."""
    m = _messaging(request)
    with m.lock:
        counts = Outbox.counts(m.conn)
        pending = int(m.conn.execute("SELECT count(*) FROM tracking_events").fetchone()[0])
    d = m.dispatcher
    return json_response(
        200, MessagingStats(counts, pending, d is not None, None if d is None else d.last_error)
    )


@admin
async def save_template(request: Request) -> Response:
    """Validates and saves a template as its next version; 422 lists every problem."""
    m = _messaging(request)
    try:
        definition: TemplateDefinition = await _json(request, TemplateDefinition)
        with m.lock:
            version = m.templates.save(m.conn, definition)
    except RequestError as e:
        return error_response(e.status, e.code, e.message)
    except TemplateError as e:
        return _rejected(e)
    return json_response(200, TemplateSaved(definition.name, version))


@admin
async def list_templates(request: Request) -> Response:
    """Every template's latest version."""
    m = _messaging(request)
    with m.lock:
        names = m.templates.names(m.conn)
    return json_response(200, {"templates": [{"name": n, "version": v, "channel": c} for n, v, c in names]})


@admin
async def get_template(request: Request) -> Response:
    """A template's latest (or `?version=`) definition."""
    m = _messaging(request)
    raw = request.query_params.get("version")
    if raw is not None and not raw.isdigit():
        return error_response(400, "bad_parameter", "version must be a whole number")
    try:
        with m.lock:
            found = m.templates.get(m.conn, request.path_params["name"], None if raw is None else int(raw))
    except UnknownTemplateError as e:
        return error_response(404, "not_found", str(e))
    return json_response(200, {"version": found.version, "template": found.definition})


@admin
async def preview(request: Request) -> Response:
    """Renders a template (inline or saved) with sample data; 422 lists every problem."""
    m = _messaging(request)
    try:
        ask: PreviewRequest = await _json(request, PreviewRequest)
        if (ask.template is None) == (ask.name is None):
            raise RequestError(400, "invalid_body", "give either `template` (inline) or `name` (saved)")
        if ask.template is not None:
            compiled = CompiledTemplate(ask.template, 0)
        else:
            assert ask.name is not None
            with m.lock:
                compiled = m.templates.get(m.conn, ask.name, ask.version)
        data = {"message_id": "msg_preview", "unsubscribe_url": f"{m.links.base_url}/t/u/preview", **ask.data}
        rendered = compiled.render(data)
    except RequestError as e:
        return error_response(e.status, e.code, e.message)
    except UnknownTemplateError as e:
        return error_response(404, "not_found", str(e))
    except TemplateError as e:
        return _rejected(e)
    return json_response(200, Preview(rendered.parts))


def messaging_routes() -> list[Route]:
    """The routes of messaging."""
    return [
        Route("/t/c/{token}", click, methods=["GET", "HEAD"]),
        Route("/t/o/{token}", open_pixel, methods=["GET", "HEAD"]),
        Route("/t/u/{token}", unsubscribe, methods=["GET", "POST"]),
        Route("/t/s/{token}", sms_receipt, methods=["POST"]),
        Route("/api/v1/messages", enqueue, methods=["POST"]),
        Route("/api/v1/messages", list_messages, methods=["GET"]),
        Route("/api/v1/messages/stats", stats, methods=["GET"]),
        Route("/api/v1/messages/bounces", bounces, methods=["POST"]),
        Route("/api/v1/messages/{id}", get_message, methods=["GET"]),
        Route("/api/v1/messages/{id}/retry", retry_message, methods=["POST"]),
        Route("/api/v1/templates", save_template, methods=["POST"]),
        Route("/api/v1/templates", list_templates, methods=["GET"]),
        Route("/api/v1/templates/preview", preview, methods=["POST"]),
        Route("/api/v1/templates/{name}", get_template, methods=["GET"]),
    ]
