"""Declarations of destinations: where rows go, which query produces them, and how they are batched."""

from __future__ import annotations

from typing import Literal

import msgspec

from tailor.connectors.destinations.audiences import segment_members


class _Common(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    query: str = ""
    """SQL over Tailor's store returning one row per `key` (see tailor.connectors.destinations.audiences)."""
    key: str = ""
    """The column that identifies a row at the destination (such as `profile_id`)."""
    segment: str | None = None
    """Instead of a query: export the members of this segment (an audience), one row per profile."""
    identifiers: list[str] = msgspec.field(default_factory=lambda: ["email"])
    """With `segment`: the identifier types exported with each member (its first value of each)."""
    traits: list[str] = msgspec.field(default_factory=list)
    """With `segment`: golden-record traits exported with each member."""
    batch_rows: int = 1000
    """Rows per batch: one request, transaction or file."""
    interval_s: float = 300
    """Seconds between two scheduled syncs."""
    max_attempts: int = 10
    """Failed deliveries of a batch (across runs, with growing waits) before it is dead-lettered."""
    retry_backoff_s: float = 1.0
    """First wait before a failed batch is tried again; doubled each time, at most an hour."""

    def problems(self) -> list[str]:
        """What is wrong with the declaration."""
        out = []
        if self.batch_rows < 1:
            out.append("batch_rows: must be at least 1")
        if self.max_attempts < 1:
            out.append("max_attempts: must be at least 1")
        if self.segment is None:
            if not self.query.strip():
                out.append("query: give a query, or a `segment` to export its members")
            if not self.key:
                out.append("key: the column that identifies a row at the destination")
        else:
            if self.query.strip():
                out.append("query: give either a query or a segment, not both")
            if self.key not in ("", "profile_id"):
                out.append("key: a segment's members are keyed by profile_id")
            for path, names in (("identifiers", self.identifiers), ("traits", self.traits)):
                out += [f"{path}: {n!r} is not a plain name" for n in names if not _plain(n)]
        return out

    @property
    def export_key(self) -> str:
        """The key column of the exported rows."""
        return self.key or "profile_id"

    def export_query(self) -> str:
        """The SQL whose rows the destination is kept in step with."""
        if self.segment is None:
            return self.query
        return segment_members(self.segment, self.identifiers, self.traits)


def _plain(name: str) -> bool:
    return name.replace("_", "").isalnum() and name.isascii()


class WebhookDestinationSpec(_Common, tag="webhook_destination", tag_field="type"):
    """Batches POSTed as JSON to a URL, signed with HMAC-SHA256, with an Idempotency-Key per batch."""

    url: str
    """Where batches are POSTed."""
    secret: str
    """The HMAC secret (or `env:VAR`) the receiver checks `X-Tailor-Signature` with."""
    timeout_s: float = 10
    """Seconds to wait for an answer before the attempt counts as failed."""


class SqlDestinationSpec(_Common, tag="sql_destination", tag_field="type"):
    """A PostgreSQL or MySQL/MariaDB table kept in step by upserts (and deletes) keyed by `key`."""

    url: str
    """Connection URL, `postgresql://...` or `mysql://...` (or `env:VAR`)."""
    table: str
    """The table written; created (key as primary key) if it does not exist."""


class FileDestinationSpec(_Common, tag="file_destination", tag_field="type"):
    """A folder that receives one CSV or Parquet file per batch of changes (`_op` = upsert or delete)."""

    path: str
    """The folder, absolute or relative to the data directory."""
    format: Literal["csv", "parquet"] = "csv"
    """The file format."""


DestinationSpec = WebhookDestinationSpec | SqlDestinationSpec | FileDestinationSpec
