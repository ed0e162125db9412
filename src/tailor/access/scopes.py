"""The scopes an admin token or console user can hold."""

from __future__ import annotations

from typing import Literal

Scope = Literal["read", "definitions", "privacy", "admin"]

SCOPES: dict[str, str] = {
    "read": "read profiles, events, the quarantine, consent and statistics",
    "definitions": "manage definitions (identity splits now; segments, traits and journeys later)",
    "privacy": "run privacy operations: record consent, export and erase people, retention",
    "admin": "administer: tokens, users, sources, quarantine replays, the audit log; implies every scope",
}


def grants(held: frozenset[str], needed: str) -> bool:
    """Whether the scopes held include the one needed (`admin` includes all)."""
    return needed in held or "admin" in held


def parse_scopes(text: str) -> frozenset[str]:
    """Comma-separated scope names; raises ValueError naming any unknown one."""
    names = frozenset(s.strip() for s in text.split(",") if s.strip())
    unknown = sorted(names - SCOPES.keys())
    if unknown or not names:
        raise ValueError(
            f"unknown scope(s) {', '.join(unknown) or '(none given)'}; scopes are {', '.join(SCOPES)}"
        )
    return names
