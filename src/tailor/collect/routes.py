"""The Segment-compatible collection endpoints: /v1/track, identify, page, screen, group, alias, batch."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tailor.collect.body import RequestError, header_write_key, read_body
from tailor.collect.messages import BATCH_DECODER, FieldError, Rejection
from tailor.collect.validate import EventRows
from tailor.collect.writer import Receipt, Submission
from tailor.exceptions import OverloadedError

if TYPE_CHECKING:
    from tailor.runtime import Runtime

SINGLE_ENDPOINTS = ("track", "identify", "page", "screen", "group", "alias")
_OK = b'{"success":true}'


class _KeyOnly(msgspec.Struct):
    writeKey: str | None = None


_KEY_DECODER = msgspec.json.Decoder(_KeyOnly)


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    """A JSON response encoded with msgspec."""
    return Response(msgspec.json.encode(body), status, headers, media_type="application/json")


def error_response(status: int, code: str, message: str, **extra: Any) -> Response:
    """An error in the shape Segment's SDKs parse: `code` and `message`, plus details."""
    headers = {"Retry-After": str(extra.pop("retry_after"))} if "retry_after" in extra else None
    return json_response(status, {"code": code, "message": message, **extra}, headers)


class CollectEndpoint:
    """One collection endpoint; `kind` is a message type or "batch"."""

    def __init__(self, kind: str) -> None:
        self.kind = kind

    async def handle(self, request: Request) -> Response:
        """Validates, commits and answers one collection request."""
        runtime: Runtime = request.app.state.runtime
        received_at = datetime.now(UTC)
        try:
            body = await read_body(request, runtime.config.collect.max_request_bytes)
            key = header_write_key(request)
            body_key = None if key else self._body_write_key(body)
            source_id = runtime.keys.source_for(key or body_key or "")
            if source_id is None:
                raise RequestError(401, "unauthorized", "unknown or missing write key")
            wait = runtime.access.write_keys.take(key or body_key or "")
            if wait is not None:
                limit = runtime.access.config.write_key_rate
                return error_response(
                    429, "rate_limited", f"over {limit:g} requests/s for this write key", retry_after=wait
                )
            submission = self._submission(runtime, source_id, body, received_at, body_key)
            receipt = await asyncio.wrap_future(runtime.writer.submit(submission))
        except RequestError as e:
            return error_response(e.status, e.code, e.message)
        except OverloadedError as e:
            return error_response(503, "overloaded", str(e), retry_after=e.retry_after_s)
        except Exception as e:  # the store failed: nothing was acknowledged, so the client must retry
            return error_response(503, "store_unavailable", f"events were not stored: {e}", retry_after=5)
        return self._answer(submission, receipt)

    def _body_write_key(self, body: bytes) -> str | None:
        try:
            if self.kind == "batch":
                return BATCH_DECODER.decode(body).writeKey
            return _KEY_DECODER.decode(body).writeKey
        except (msgspec.DecodeError, UnicodeDecodeError):
            return None

    def _submission(
        self, runtime: Runtime, source_id: str, body: bytes, received_at: datetime, body_key: str | None
    ) -> Submission:
        if body_key:  # the write key is never stored, not even inside a quarantined payload
            body = body.replace(body_key.encode(), b"[write key removed]")
        validate = runtime.validator.validate
        if self.kind != "batch":
            rows, rejections = validate(source_id, [body], received_at, implied_type=self.kind, indexed=False)
            rows, rejections = runtime.privacy.gate.apply(source_id, rows, rejections, 1, indexed=False)
            return Submission(source_id, self.kind, received_at, rows, rejections)
        try:
            envelope = BATCH_DECODER.decode(body)
        except (msgspec.DecodeError, UnicodeDecodeError) as e:
            # The whole body is unusable; keep it in quarantine so the sender's bug can be seen and fixed.
            error = FieldError("$", f"batch body could not be decoded: {e}")
            return Submission(source_id, "batch", received_at, EventRows(), [Rejection(None, [error], body)])
        rows, rejections = validate(
            source_id,
            envelope.batch,
            received_at,
            batch_sent_at=envelope.sentAt,
            batch_context=envelope.context,
            batch_integrations=envelope.integrations,
        )
        # Tombstones, consent payloads and the source's consent policy (tailor.privacy.gate).
        rows, rejections = runtime.privacy.gate.apply(source_id, rows, rejections, len(envelope.batch), True)
        return Submission(source_id, "batch", received_at, rows, rejections)

    def _answer(self, submission: Submission, receipt: Receipt) -> Response:
        rejected = [
            {"index": r.index, "reason": r.reason, "errors": r.errors, "quarantine_id": q}
            # zip stops at the rejections: ids beyond them belong to events the store refused,
            # which were quarantined in their place (and are not counted as stored).
            for r, q in zip(submission.rejections, receipt.quarantine_ids, strict=False)
        ]
        if self.kind != "batch" and rejected:
            r = rejected[0]
            return error_response(
                400, "invalid_event", str(r["reason"]), errors=r["errors"], quarantine_id=r["quarantine_id"]
            )
        if submission.rejections and not len(submission.rows) and submission.rejections[0].index is None:
            return error_response(
                400,
                "invalid_body",
                submission.rejections[0].reason,
                quarantine_id=rejected[0]["quarantine_id"],
            )
        if not rejected and not receipt.duplicates:
            return Response(_OK, 200, media_type="application/json")
        return json_response(
            200,
            {
                "success": not rejected,
                "stored": receipt.stored,
                "duplicates": receipt.duplicates,
                "rejected": rejected,
            },
        )


def collect_routes() -> list[Route]:
    """The routes of the collection API."""
    kinds = (*SINGLE_ENDPOINTS, "batch")
    return [
        Route(f"/v1/{kind}", CollectEndpoint(kind).handle, methods=["POST"], name=f"collect_{kind}")
        for kind in kinds
    ]
