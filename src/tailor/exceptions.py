"""The root of Tailor's exceptions, with markers that tell retry logic what to retry."""

from __future__ import annotations


class TailorError(Exception):
    """Base class of every error Tailor raises on purpose."""


class TerminalError(TailorError):
    """An error that will not go away by retrying the same operation."""


class TransientError(TailorError):
    """An error that may go away if the same operation is retried later."""


class ConfigError(TerminalError):
    """The configuration file or environment holds a value Tailor cannot use."""


class DataDirError(TerminalError):
    """The data directory is missing, not initialised, or in use by another process."""


class StoreError(TailorError):
    """A storage engine failed; carries the SQL that failed."""

    def __init__(self, message: str, sql: str | None = None) -> None:
        super().__init__(message if sql is None else f"{message}\n-- failing SQL:\n{sql}")
        self.sql = sql


class OverloadedError(TransientError):
    """The event writer is behind; the caller should retry after a pause."""

    def __init__(self, retry_after_s: int) -> None:
        super().__init__(f"the event writer is behind; retry after {retry_after_s} s")
        self.retry_after_s = retry_after_s
