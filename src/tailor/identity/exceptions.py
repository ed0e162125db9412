"""Errors of identity resolution."""

from __future__ import annotations

from tailor.exceptions import TerminalError


class IdentityError(TerminalError):
    """Base class of the errors identity resolution raises on purpose."""


class UnknownIdentifierTypeError(IdentityError, LookupError):
    """An identifier type name that is neither built in nor declared in the normalisation rules."""

    def __init__(self, name: str, known: list[str]) -> None:
        super().__init__(f"unknown identifier type {name!r}; known types: {', '.join(sorted(known))}")
        self.name = name
