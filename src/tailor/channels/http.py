"""Sending HTTP requests with the hand-over before the last byte of the body, over kept-alive connections."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx

from tailor.channels.base import HandOver
from tailor.channels.exceptions import PermanentDeliveryError, TransientDeliveryError

RETRYABLE = frozenset({408, 409, 425, 429})
"""4xx answers that mean "later" rather than "never"; every 5xx is retried too."""


async def _body(payload: bytes, handover: HandOver) -> AsyncIterator[bytes]:
    # A server acts on a request only once its whole body (Content-Length) has arrived.
    if len(payload) > 1:
        yield payload[:-1]
    handover()
    yield payload[-1:]


async def post(
    client: httpx.AsyncClient, url: str, payload: bytes, headers: dict[str, str], handover: HandOver
) -> httpx.Response:
    """POSTs `payload`, calling `handover` just before its last byte; classifies failures.

    Raises TransientDeliveryError for network errors, 5xx and RETRYABLE answers, and
    PermanentDeliveryError for other non-2xx answers.
    """
    if not payload:
        raise PermanentDeliveryError("an empty request body cannot be sent")
    sized = {**headers, "Content-Length": str(len(payload))}
    try:
        response = await client.post(url, content=_body(payload, handover), headers=sized)
    except httpx.TransportError as e:
        raise TransientDeliveryError(f"{url}: {type(e).__name__}: {e}") from e
    if response.is_success:
        return response
    text = response.text[:300].strip()
    detail = f"{url} answered {response.status_code}{': ' + text if text else ''}"
    if response.status_code >= 500 or response.status_code in RETRYABLE:
        raise TransientDeliveryError(detail, response.status_code)
    raise PermanentDeliveryError(detail, response.status_code)


def client(concurrency: int, timeout_s: float) -> httpx.AsyncClient:
    """An HTTP client that keeps up to `concurrency` connections open per host."""
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    return httpx.AsyncClient(limits=limits, timeout=timeout_s, follow_redirects=False)
