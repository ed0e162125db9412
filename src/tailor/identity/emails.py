"""Email addresses to one canonical form per mailbox, with a pragmatic syntax check and no network."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Set

# Unquoted local parts only: quoted ones ("john doe"@x) are legal but never seen from real customers.
_LOCAL = re.compile(r"[^\s\x00-\x1f\x7f@\"(),:;<>\[\\\].]+(?:\.[^\s\x00-\x1f\x7f@\"(),:;<>\[\\\].]+)*")
_DOMAIN = re.compile(r"(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+(?:[a-z]{2,63}|xn--[a-z0-9-]{1,59})")


def normalise_email(
    text: str,
    *,
    plus_all: bool,
    plus_domains: Set[str],
    dotless_domains: Set[str],
    domain_aliases: Mapping[str, str],
) -> tuple[str | None, str | None]:
    """A trimmed email address as (canonical address, None), or (None, why it is not an address).

    The address is lower-cased (mailboxes are case-insensitive in practice), an internationalised
    domain is written in its ASCII (punycode) form, a '+tag' is dropped when `plus_all` is set or
    the domain is in `plus_domains`, and dots are dropped from local parts at `dotless_domains`.
    """
    text = unicodedata.normalize("NFKC", text).lower()
    local, at, domain = text.rpartition("@")
    if not at:
        return None, "invalid: not an email address (no '@')"
    if not local:
        return None, "invalid: nothing before the '@'"
    if len(local) > 64:
        return None, "invalid: more than 64 characters before the '@'"
    if not _LOCAL.fullmatch(local):
        return None, f"invalid: {local!r} is not a valid local part"
    if not domain.isascii():
        try:
            domain = domain.encode("idna").decode("ascii")
        except UnicodeError:
            return None, f"invalid: {domain!r} is not a valid domain"
    if len(domain) > 253 or not _DOMAIN.fullmatch(domain):
        return None, f"invalid: {domain!r} is not a valid domain"
    domain = domain_aliases.get(domain, domain)
    if plus_all or domain in plus_domains:
        local = local.partition("+")[0]
        # "a.+tag@x" leaves "a.", which is not an address of its own.
        if not _LOCAL.fullmatch(local):
            return None, f"invalid: {local!r} before the '+tag' is not a valid local part"
    if domain in dotless_domains:
        local = local.replace(".", "")
    return f"{local}@{domain}", None
