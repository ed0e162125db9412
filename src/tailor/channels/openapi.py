"""The OpenAPI description of the messaging routes (merged into /openapi.json)."""

from __future__ import annotations

from typing import Any

from tailor.channels.outbox import STATUSES, OutboxMessage
from tailor.channels.schemas import (
    BounceResult,
    Enqueued,
    MessageDetail,
    MessageList,
    MessagingStats,
    Preview,
    PreviewRequest,
    TemplateRejected,
    TemplateSaved,
)
from tailor.channels.templates import TemplateDefinition

MESSAGING_SCHEMAS: list[type] = [
    OutboxMessage,
    Enqueued,
    MessageDetail,
    MessageList,
    MessagingStats,
    BounceResult,
    TemplateDefinition,
    TemplateSaved,
    TemplateRejected,
    PreviewRequest,
    Preview,
]


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _content(schema: dict[str, Any], description: str, media: str = "application/json") -> dict[str, Any]:
    return {"description": description, "content": {media: {"schema": schema}}}


_ERROR = _ref("ErrorBody")
_BAD_LINK = _content({"type": "string"}, "invalid or tampered token (never a redirect)", "text/html")
_TOKEN = {"name": "token", "in": "path", "required": True, "schema": {"type": "string"}}
_MID = {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}


def _public(summary: str, responses: dict[str, Any]) -> dict[str, Any]:
    return {"tags": ["tracking"], "summary": summary, "parameters": [_TOKEN], "responses": responses}


def _admin(
    summary: str,
    ok: dict[str, Any],
    params: list[dict[str, Any]] | None = None,
    body: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    op: dict[str, Any] = {
        "tags": ["messaging"],
        "summary": summary,
        "security": [{"adminToken": []}],
        "responses": {"200": ok, "401": _content(_ERROR, "missing or unknown admin token"), **(extra or {})},
    }
    if params:
        op["parameters"] = params
    if body is not None:
        op["requestBody"] = {"required": True, "content": body}
    return op


def messaging_paths() -> dict[str, Any]:
    """The path items of the tracking links and the messaging admin API."""
    click = _public(
        "Click redirect: records the click, then 302 to the link's target",
        {"302": {"description": "redirect to the signed target URL"}, "400": _BAD_LINK},
    )
    pixel = _public(
        "Open pixel: records an open, answers a 1x1 GIF",
        {
            "200": _content({"type": "string", "format": "binary"}, "a transparent GIF", "image/gif"),
            "400": _BAD_LINK,
        },
    )
    unsubscribe_page = _public(
        "One-click unsubscribe page (RFC 8058: GET never unsubscribes)",
        {"200": _content({"type": "string"}, "a page with a confirm button", "text/html"), "400": _BAD_LINK},
    )
    unsubscribe_post = _public(
        "One-click unsubscribe (RFC 8058 body List-Unsubscribe=One-Click)",
        {
            "200": _content({"type": "string"}, "unsubscribed", "text/html"),
            "400": _BAD_LINK,
            "410": _content({"type": "string"}, "the message is no longer kept", "text/html"),
        },
    )
    unsubscribe_post["requestBody"] = {
        "required": False,
        "content": {"application/x-www-form-urlencoded": {"schema": {"type": "object"}}},
    }
    receipt = _public(
        "An SMS provider's delivery receipt (form or JSON, e.g. Twilio's MessageStatus)",
        {
            "200": _content({"type": "object"}, "applied or noted"),
            "400": _content(_ERROR, "invalid token, or no status field"),
        },
    )
    receipt["requestBody"] = {
        "required": True,
        "content": {
            "application/x-www-form-urlencoded": {"schema": {"type": "object"}},
            "application/json": {"schema": {"type": "object"}},
        },
    }
    json_body = {"application/json": {"schema": _ref("OutboxMessage")}}
    invalid = {"400": _content(_ERROR, "the body is not a valid message")}
    rejected = {"422": _content(_ref("TemplateRejected"), "every problem of the template")}
    not_found = {"404": _content(_ERROR, "no such entry")}
    status = {"name": "status", "in": "query", "required": False, "schema": {"enum": list(STATUSES)}}
    campaign = {"name": "campaign_id", "in": "query", "required": False, "schema": {"type": "string"}}
    limit = {
        "name": "limit",
        "in": "query",
        "required": False,
        "schema": {"type": "integer", "minimum": 1, "maximum": 1000},
    }
    version = {"name": "version", "in": "query", "required": False, "schema": {"type": "integer"}}
    name = {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
    return {
        "/t/c/{token}": {"get": click, "head": click},
        "/t/o/{token}": {"get": pixel, "head": pixel},
        "/t/u/{token}": {"get": unsubscribe_page, "post": unsubscribe_post},
        "/t/s/{token}": {"post": receipt},
        "/api/v1/messages": {
            "post": _admin(
                "Enqueue a message (the same idempotency key twice is one message)",
                _content(_ref("Enqueued"), "enqueued, or already there"),
                body=json_body,
                extra={
                    **invalid,
                    "422": _content(_ERROR, "the message is invalid; `errors` lists each problem"),
                },
            ),
            "get": _admin(
                "Messages, newest first",
                _content(_ref("MessageList"), "messages"),
                [status, campaign, limit],
                extra={"400": _content(_ERROR, "bad parameter")},
            ),
        },
        "/api/v1/messages/stats": {
            "get": _admin("Messages per status", _content(_ref("MessagingStats"), "counts"))
        },
        "/api/v1/messages/bounces": {
            "post": _admin(
                "Apply a bounce: a delivery status notification as raw RFC 5322 bytes",
                _content(_ref("BounceResult"), "each recipient status and what was done"),
                # Any content type is read as the raw message (message/rfc822 too); the document
                # names text/plain, which every client and the fuzzing test can send.
                body={"text/plain": {"schema": {"type": "string"}}},
                extra={"422": _content(_ERROR, "not a delivery status notification")},
            )
        },
        "/api/v1/messages/{id}": {
            "get": _admin(
                "A message with its failed attempts",
                _content(_ref("MessageDetail"), "the message"),
                [_MID],
                extra=not_found,
            )
        },
        "/api/v1/messages/{id}/retry": {
            "post": _admin(
                "Queue a failed, dead or bounced message once more",
                _content({"type": "object"}, "queued"),
                [_MID],
                extra={**not_found, "409": _content(_ERROR, "the message is not failed, dead or bounced")},
            )
        },
        "/api/v1/templates": {
            "post": _admin(
                "Validate and save a template as its next version",
                _content(_ref("TemplateSaved"), "saved"),
                body={"application/json": {"schema": _ref("TemplateDefinition")}},
                extra={**invalid, **rejected},
            ),
            "get": _admin("Every template's latest version", _content({"type": "object"}, "templates")),
        },
        "/api/v1/templates/preview": {
            "post": _admin(
                "Render a template (inline or saved) with sample data",
                _content(_ref("Preview"), "the rendered parts"),
                body={"application/json": {"schema": _ref("PreviewRequest")}},
                extra={**invalid, **rejected, **not_found},
            )
        },
        "/api/v1/templates/{name}": {
            "get": _admin(
                "A saved template",
                _content({"type": "object"}, "the definition"),
                [name, version],
                extra=not_found,
            )
        },
    }
