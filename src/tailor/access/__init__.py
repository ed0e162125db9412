"""Access control: scoped admin tokens, console users and sessions, rate limits and the audit log."""

from tailor.access.scopes import SCOPES, Scope, grants

__all__ = ["SCOPES", "Scope", "grants"]
