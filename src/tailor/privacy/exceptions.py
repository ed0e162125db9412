"""Errors of consent, export, erasure and retention."""

from __future__ import annotations

from tailor.collect.messages import FieldError
from tailor.exceptions import TerminalError


class PrivacyError(TerminalError):
    """Base class of the errors the privacy package raises on purpose."""


class ConsentPayloadError(PrivacyError, ValueError):
    """A consent statement that cannot be used; `errors` names each bad field by its path."""

    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__("; ".join(f"{e.path}: {e.message}" for e in errors))
        self.errors = errors


class AlreadyErasedError(PrivacyError):
    """The person asked for was erased before; their tombstone says when, never who."""


class PersonNotFoundError(PrivacyError, LookupError):
    """No profile holds the identifier asked for (and no tombstone does either)."""
