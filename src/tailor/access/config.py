"""Typed settings of rate limits and console sessions (the `[access]` section)."""

from __future__ import annotations

import msgspec


class AccessConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Rate limits per write key and per admin credential, and console session lifetime."""

    write_key_rate: float = 2000.0
    """Collection requests per second one write key may make on average (0 = unlimited)."""
    write_key_burst: float = 4000.0
    """Requests one write key may make at once before the average applies."""
    token_rate: float = 50.0
    """Admin API requests per second one token or console session may make (0 = unlimited)."""
    token_burst: float = 200.0
    """Admin API requests one token or session may make at once."""
    session_hours: float = 12.0
    """How long a console session lasts after sign-in."""
