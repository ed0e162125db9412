"""Errors of profile, computed-trait and segment definitions."""

from __future__ import annotations

from dataclasses import dataclass

from tailor.exceptions import TerminalError


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a definition, at a path inside it (`condition.all[1].within`)."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class DefinitionError(TerminalError):
    """A definition that cannot be saved; carries every problem found, each with its path."""

    def __init__(self, kind: str, name: str | None, problems: list[Problem]) -> None:
        self.kind = kind
        self.name = name
        self.problems = problems
        what = f"{kind} {name!r}" if name else kind
        listed = "\n".join(f"  - {p}" for p in problems)
        super().__init__(
            f"{what} is not valid ({len(problems)} problem{'s' * (len(problems) != 1)}):\n{listed}"
        )


class UnknownDefinitionError(TerminalError, LookupError):
    """No computed trait or segment has the name asked for."""
