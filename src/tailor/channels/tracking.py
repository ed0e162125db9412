"""Tracking links: signed tokens for click redirects, the open pixel and one-click unsubscribe.

A token is the message id (and, for a click, the link id and target URL) signed with
HMAC-SHA256 by itsdangerous, with a different salt per purpose: a click token cannot be replayed as an
unsubscribe, and a token cannot be changed to redirect elsewhere or to name another message.
The target URL travels inside the click token, so a redirect never depends on the outbox row
still existing (old messages keep working after retention deletes them).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import html
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import itsdangerous
import msgspec

from tailor.channels.exceptions import TokenError

TRACK_PREFIX = "/t"
HONEYPOT_LINK = "_hp"
"""The link id of the invisible link that only machines follow."""

# An <a ...> start tag, with quoted attribute values that may hold '>'.
_A_TAG = re.compile(r"""<a\b(?:[^>"']|"[^"]*"|'[^']*')*>""", re.IGNORECASE)
_HREF = re.compile(r"""(\bhref\s*=\s*)("[^"]*"|'[^']*'|[^\s>]+)""", re.IGNORECASE)
_LINK_ID = re.compile(r"""\bdata-link-id\s*=\s*("[^"]*"|'[^']*'|[^\s>]+)""", re.IGNORECASE)
_BODY_END = re.compile(r"</body\s*>", re.IGNORECASE)


@dataclass(frozen=True)
class Click:
    """What a click token says: which message, which link, where to."""

    message_id: str
    link_id: str
    url: str


class TrackingLinks:
    """Makes and reads the signed URLs of tracked messages."""

    def __init__(self, secret_keys: Sequence[str], base_url: str) -> None:
        if not secret_keys:
            raise ValueError("tracking links need at least one secret key")
        keys = list(secret_keys)  # the last one signs; all of them verify (key rotation)
        self.base_url = base_url.rstrip("/")
        self._click = _Tokens(keys, "tailor.click")
        self._open = _Tokens(keys, "tailor.open")
        self._unsubscribe = _Tokens(keys, "tailor.unsubscribe")
        self._status = _Tokens(keys, "tailor.status")
        # The rendered template and the List-Unsubscribe header both need it: sign it once.
        self.unsubscribe_url = functools.lru_cache(maxsize=4096)(self._unsubscribe_url)  # type: ignore[method-assign]

    def click_url(self, message_id: str, link_id: str, url: str) -> str:
        """The redirect URL that records a click on `url`."""
        return f"{self.base_url}{TRACK_PREFIX}/c/{self._click.dumps([message_id, link_id, url])}"

    def open_url(self, message_id: str) -> str:
        """The open pixel's URL."""
        return f"{self.base_url}{TRACK_PREFIX}/o/{self._open.dumps(message_id)}.gif"

    def _unsubscribe_url(self, message_id: str) -> str:
        return f"{self.base_url}{TRACK_PREFIX}/u/{self._unsubscribe.dumps(message_id)}"

    def unsubscribe_url(self, message_id: str) -> str:
        """The one-click unsubscribe URL (RFC 8058: GET shows a page, POST unsubscribes)."""
        return f"{self.base_url}{TRACK_PREFIX}/u/{self._unsubscribe.dumps(message_id)}"

    def read_click(self, token: str) -> Click:
        """The click a token stands for; TokenError when it was not made by this server."""
        value = _load(self._click, token, "click")
        if not (isinstance(value, list) and len(value) == 3 and all(isinstance(v, str) for v in value)):
            raise TokenError("the click token does not hold a message, link and URL")
        if not value[2].startswith(("https://", "http://")):
            raise TokenError("the click token's target is not an http(s) URL")
        return Click(value[0], value[1], value[2])

    def read_open(self, token: str) -> str:
        """The message id of an open-pixel token."""
        return _message(_load(self._open, token.removesuffix(".gif"), "open pixel"))

    def read_unsubscribe(self, token: str) -> str:
        """The message id of an unsubscribe token."""
        return _message(_load(self._unsubscribe, token, "unsubscribe"))

    def status_url(self, message_id: str) -> str:
        """The URL an SMS provider posts a message's delivery receipts to."""
        return f"{self.base_url}{TRACK_PREFIX}/s/{self._status.dumps(message_id)}"

    def read_status(self, token: str) -> str:
        """The message id of a delivery-receipt token."""
        return _message(_load(self._status, token, "delivery receipt"))


class _Tokens:
    """JSON values, base64url-encoded and signed with HMAC-SHA256 (itsdangerous' Signer).

    Not itsdangerous' URLSafeSerializer: it tries zlib on every value, which cost more than the
    signature for these short payloads.
    """

    def __init__(self, keys: list[str], salt: str) -> None:
        self._signer = itsdangerous.Signer(keys, salt=salt, digest_method=hashlib.sha256)

    def dumps(self, value: object) -> str:
        payload = base64.urlsafe_b64encode(msgspec.json.encode(value)).rstrip(b"=")
        return self._signer.sign(payload).decode("ascii")

    def loads(self, token: str) -> object:
        payload = self._signer.unsign(token.encode("ascii", "replace"))
        return msgspec.json.decode(base64.urlsafe_b64decode(payload + b"=" * (-len(payload) % 4)))


def _load(tokens: _Tokens, token: str, kind: str) -> object:
    try:
        return tokens.loads(token)
    except (itsdangerous.BadSignature, ValueError, msgspec.DecodeError) as e:
        raise TokenError(f"invalid or tampered {kind} link") from e


def _message(value: object) -> str:
    if not isinstance(value, str) or not value.startswith("msg_"):
        raise TokenError("the token does not name a message")
    return value


def rewrite_links(body: str, track: Callable[[str, str], str], skip: Sequence[str] = ()) -> tuple[str, int]:
    """Replaces every http(s) href of an <a> tag by `track(url, link_id)`; returns the body and how many.

    The link id is the tag's `data-link-id` attribute, else `link_N` by position. mailto:, tel:,
    anchors and the URLs in `skip` (the unsubscribe page) are left as they are.
    """
    count = 0

    def one(tag: re.Match[str]) -> str:
        nonlocal count
        text = tag.group(0)
        href = _HREF.search(text)
        if href is None:
            return text
        url = html.unescape(href.group(2).strip("\"'")).strip()
        if not url.lower().startswith(("http://", "https://")) or url in skip:
            return text
        count += 1
        named = _LINK_ID.search(text)
        link_id = named.group(1).strip("\"'") if named else f"link_{count}"
        new = html.escape(track(url, link_id), quote=True)
        return f'{text[: href.start(2)]}"{new}"{text[href.end(2) :]}'

    return _A_TAG.sub(one, body), count


def add_pixel(body: str, pixel_url: str, honeypot_url: str | None = None) -> str:
    """Adds the open pixel (and the invisible honeypot link) before </body>, or at the end."""
    extra = (
        f'<img src="{html.escape(pixel_url, quote=True)}" width="1" height="1" alt=""'
        ' style="display:block;border:0;width:1px;height:1px;overflow:hidden">'
    )
    if honeypot_url is not None:
        # Hidden from people and screen readers; link scanners follow every href.
        extra += (
            f'<a href="{html.escape(honeypot_url, quote=True)}" style="display:none" aria-hidden="true"'
            ' tabindex="-1"></a>'
        )
    ends = list(_BODY_END.finditer(body))
    end = ends[-1] if ends else None
    if end is None:
        return body + extra
    return body[: end.start()] + extra + body[end.start() :]


def track_text_links(body: str, track: Callable[[str, str], str], skip: Sequence[str] = ()) -> str:
    """Replaces the bare http(s) URLs of a plain-text part or an SMS by tracked ones."""
    count = 0

    def one(m: re.Match[str]) -> str:
        nonlocal count
        url = m.group(0).rstrip(".,;:!?)")
        tail = m.group(0)[len(url) :]
        if url in skip:
            return m.group(0)
        count += 1
        return track(url, f"text_{count}") + tail

    return re.sub(r"https?://[^\s<>\"']+", one, body)
