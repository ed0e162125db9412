"""Errors of connectors: a declaration or mapping that cannot work, a source or destination that is away."""

from __future__ import annotations

from tailor.exceptions import TerminalError, TransientError


class ConnectorError(TerminalError):
    """A connector that cannot run as declared (a bad mapping, a missing column, a missing file)."""


class MappingError(ConnectorError):
    """A mapping that names no usable column or type; every problem is listed with its path."""

    def __init__(self, where: str, problems: list[str]) -> None:
        super().__init__(f"{where}: " + "; ".join(problems))
        self.problems = problems


class SourceUnavailableError(TransientError):
    """A source database that cannot be reached or went away mid-read; the next run resumes."""


class DestinationUnavailableError(TransientError):
    """A destination that is down or answering errors a retry may cure (5xx, timeouts, lost connections)."""


class DestinationRejectedError(TerminalError):
    """A destination that refuses a batch as it is (4xx, a constraint): retrying it will not help."""
