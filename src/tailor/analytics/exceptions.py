"""Errors of the analytics package, and the problem found in one row of an input file."""

from __future__ import annotations

import msgspec

from tailor.exceptions import TerminalError


class InputProblem(msgspec.Struct, frozen=True):
    """Something wrong with one row of an input file: its line, the field and what is wrong."""

    line: int
    """Line number in the file (the header is line 1); 0 when the problem is the whole file."""
    field: str
    message: str

    def __str__(self) -> str:
        where = f"line {self.line}" if self.line else "file"
        return f"{where}, {self.field}: {self.message}"


class AnalyticsError(TerminalError):
    """An analysis cannot be computed as asked (bad parameters, nothing to analyse)."""


class BadInputError(AnalyticsError):
    """An input file has no usable row at all; carries every problem found."""

    def __init__(self, message: str, problems: list[InputProblem]) -> None:
        shown = "\n".join(f"  {p}" for p in problems[:20])
        more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
        super().__init__(f"{message}\n{shown}{more}" if problems else message)
        self.problems = problems
