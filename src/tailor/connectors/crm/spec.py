"""The declaration of a two-way CRM sync: the table, its columns as identifiers and traits, the rules."""

from __future__ import annotations

import re
from typing import Literal

import msgspec

from tailor.connectors.mapping import Field, FieldType, Mapping
from tailor.profiles.golden import ALIASES

Owner = Literal["crm", "tailor", "latest"]
SyncType = Literal["string", "integer", "number", "boolean"]
_NAME = re.compile(r"[a-z][a-z0-9_]{0,62}")


class CrmField(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """One CRM column kept in step with a Tailor trait."""

    trait: str | None = None
    """The Tailor trait (snake case); the column's name when not given."""
    type: SyncType = "string"
    """How values are compared and converted both ways."""
    owner: Owner = "latest"
    """Who wins when both sides changed since they last agreed: crm, tailor, or the later change."""


class CrmSyncSpec(msgspec.Struct, forbid_unknown_fields=True, tag="crm_sync", tag_field="type"):
    """A CRM table in PostgreSQL or MySQL/MariaDB, merged both ways with Tailor's profiles."""

    url: str
    """Connection URL, `postgresql://...` or `mysql://...` (or `env:VAR`)."""
    table: str
    """The contacts table (schema.table allowed)."""
    fields: dict[str, CrmField]
    """CRM column -> the trait it is kept in step with, its type and its conflict rule."""
    key: str = "id"
    """The contacts' primary key."""
    updated_at: str = "updated_at"
    """The column the CRM sets on every change: the version optimistic writes check (sub-second)."""
    identifiers: dict[str, str] = msgspec.field(default_factory=dict)
    """CRM column -> identifier type (email, phone, ...): read into Tailor, never written back."""
    record: str = "crm"
    """The record kind contacts are stored as in Tailor (`record:KIND:ID`)."""
    deleted_at: str | None = None
    """A soft-delete column: a contact with a value there is treated as deleted."""
    on_delete: Literal["unlink", "keep"] = "unlink"
    """A deleted contact (soft delete, or gone from the key scan): unlink its record, or keep it linked."""
    on_erasure: Literal["delete", "blank", "keep"] = "keep"
    """When Tailor erases a person: delete their contacts, blank the synced columns, or leave the CRM."""
    insert_new: bool = False
    """Insert profiles that have no contact yet (with an `insert_when` identifier) into the CRM."""
    insert_when: str = "email"
    """The identifier type a profile needs to be inserted as a contact."""
    profile_column: str | None = None
    """A unique CRM column that receives the profile id of inserted contacts (makes inserts idempotent)."""
    batch_rows: int = 1000
    """Contacts per page read, and per CRM transaction written."""
    interval_s: float = 300
    """Seconds between two scheduled cycles."""

    def problems(self) -> list[str]:
        """What is wrong with the declaration, each with its field."""
        out = []
        if not self.fields:
            out.append("fields: name at least one CRM column to keep in step")
        columns = {self.key, self.updated_at, *(c for c in [self.deleted_at, self.profile_column] if c)}
        for column, f in self.fields.items():
            trait = f.trait or column
            if not _NAME.fullmatch(trait):
                out.append(f"fields.{column}.trait: {trait!r} is not a snake_case trait name")
            elif trait in ALIASES:
                out.append(f"fields.{column}.trait: {trait!r} is spelled {ALIASES[trait]!r} in Tailor")
            if column in columns or column in self.identifiers:
                out.append(f"fields.{column}: already used as the key, a version or an identifier column")
        traits = [self.trait(c) for c in self.fields]
        if len(set(traits)) != len(traits):
            out.append("fields: two columns are kept in step with the same trait")
        if ":" in self.record:
            out.append(f"record: {self.record!r} must not contain ':'")
        if self.insert_new and not self.profile_column:
            out.append(
                "profile_column: insert_new needs a unique column for the profile id (no double inserts)"
            )
        if self.insert_new and self.insert_when not in self.identifiers.values():
            out.append(
                f"insert_when: no identifier column of type {self.insert_when!r} to insert contacts by"
            )
        if self.batch_rows < 1:
            out.append("batch_rows: must be at least 1")
        return out + [f"identifiers.{p}" for p in self.import_mapping().problems() if "identifiers" in p]

    def trait(self, column: str) -> str:
        """The Tailor trait a CRM column is kept in step with."""
        return self.fields[column].trait or column

    def import_mapping(self) -> Mapping:
        """How contact rows become identify events of records (the import path every source uses)."""
        traits: dict[str, FieldType | Field] = {
            c: Field(f.type, name=self.trait(c)) for c, f in self.fields.items()
        }
        return Mapping(
            kind="identify",
            record=self.record,
            id=self.key,
            identifiers=dict(self.identifiers),
            traits=traits,
        )
