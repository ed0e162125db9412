"""Errors of journeys: invalid definitions and unknown journeys."""

from __future__ import annotations

from tailor.exceptions import TerminalError
from tailor.profiles.exceptions import DefinitionError, Problem


class InvalidJourney(DefinitionError):
    """A journey definition that cannot be saved; carries every problem found, each with its path."""

    def __init__(self, name: str | None, problems: list[Problem]) -> None:
        super().__init__("journey", name, problems)


class UnknownJourneyError(TerminalError, LookupError):
    """No journey has the name asked for."""


__all__ = ["InvalidJourney", "Problem", "UnknownJourneyError"]
