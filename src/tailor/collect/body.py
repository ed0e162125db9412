"""Reading a collection request: size limits, gzip, content type and the write key."""

from __future__ import annotations

import base64
import binascii
import zlib

from starlette.requests import Request

ACCEPTED_CONTENT_TYPES = ("application/json", "text/plain", "")


class RequestError(Exception):
    """A request the collector answers with an error status and a Segment-style JSON body."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, decompressed, refusing anything over `limit` bytes before or after gzip."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type not in ACCEPTED_CONTENT_TYPES:
        raise RequestError(
            415, "unsupported_media_type", f"Content-Type must be application/json, got {content_type!r}"
        )
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise RequestError(
            413, "request_too_large", f"body of {declared} bytes exceeds the {limit}-byte limit"
        )
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise RequestError(413, "request_too_large", f"body exceeds the {limit}-byte limit")
        chunks.append(chunk)
    body = b"".join(chunks)
    encoding = request.headers.get("content-encoding", "").strip().lower()
    if encoding == "gzip":
        return _gunzip(body, limit)
    if encoding not in ("", "identity"):
        raise RequestError(
            415, "unsupported_encoding", f"Content-Encoding {encoding!r} is not supported; use gzip"
        )
    return body


def _gunzip(body: bytes, limit: int) -> bytes:
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(body, limit + 1)
    except zlib.error as e:
        raise RequestError(400, "bad_gzip", f"body is not valid gzip: {e}") from e
    if len(out) > limit:
        raise RequestError(413, "request_too_large", f"decompressed body exceeds the {limit}-byte limit")
    if not inflater.eof:
        raise RequestError(400, "bad_gzip", "gzip body is truncated")
    return out


def header_write_key(request: Request) -> str | None:
    """The write key from HTTP Basic auth (as username) or the X-Write-Key header."""
    auth = request.headers.get("authorization", "")
    if auth[:6].lower() == "basic ":
        try:
            user = base64.b64decode(auth[6:].strip(), validate=True).decode("utf-8").partition(":")[0]
        except (binascii.Error, UnicodeDecodeError) as e:
            raise RequestError(401, "unauthorized", "Authorization header is not valid Basic auth") from e
        if user:
            return user
    return request.headers.get("x-write-key") or None
