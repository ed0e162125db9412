"""Errors of probabilistic record matching."""

from __future__ import annotations

from tailor.identity.exceptions import IdentityError


class MatchingError(IdentityError):
    """Base class of the errors record matching raises on purpose."""


class ColumnError(MatchingError):
    """A column that was asked for is missing, or a column option cannot be read."""


class ModelError(MatchingError):
    """A match model cannot be fitted or read (no records, no usable column, a bad JSON document)."""


class RecordFileError(MatchingError):
    """A record file cannot be read at all (missing, empty, or without the id column)."""
