"""One cycle of a two-way CRM sync: read every contact, merge each field three ways, write both sides.

A cycle (1) carries out pending erasures, (2) reads Tailor's side (each linked contact's profile
and traits) and the stored bases, (3) pages through the contacts: per field `merge` decides; the
CRM's changes are imported as identify events of the contact's record through the import path
every source uses (durable before their bases move), Tailor's changes are written to the CRM
optimistically (their bases move after the CRM's commit), (4) treats contacts that are soft
deleted, or gone from the key scan, per `on_delete`, and (5) inserts profiles without a contact
when `insert_new` says so.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import msgspec
import pyarrow as pa

from tailor.collect.writer import EventWriter
from tailor.connectors.crm.base import BaseRow, MergeBase
from tailor.connectors.crm.merge import Action, Base, canonical, merge, to_python
from tailor.connectors.crm.spec import CrmSyncSpec
from tailor.connectors.crm.table import Contact, ContactTable
from tailor.connectors.crm.tailor_side import (
    LinkedContact,
    imports_applied,
    linked_contacts,
    profiles_without_contact,
)
from tailor.connectors.events import EventShape
from tailor.connectors.exceptions import ConnectorError
from tailor.connectors.files import RowChunk
from tailor.connectors.importer import MAX_ERRORS_KEPT, EventImport
from tailor.connectors.sqldb import dialect_of
from tailor.store.database import Database

ID_PREFIX = "id:"
"""Identifier columns have bases too (under `id:COLUMN`): a changed email is imported like a trait."""

Unlink = Callable[[str], None]
"""Detaches an identifier (`record:KIND:ID`) from its profile (the identity service's block)."""

CrmHook = Callable[[str], None]
"""Called at named points of a cycle (tests crash or stop the database there)."""


@dataclass
class CrmSyncResult:
    """What one cycle did."""

    contacts_read: int = 0
    written_to_crm: int = 0
    """Contacts updated in the CRM with Tailor's values."""
    written_to_tailor: int = 0
    """Contacts whose CRM values were stored in Tailor as a new version of their record."""
    fields_to_crm: int = 0
    fields_to_tailor: int = 0
    conflicts: int = 0
    """Fields both sides had changed, decided by their rule."""
    deferred: int = 0
    """Optimistic writes that found the contact changed since it was read: merged again next cycle."""
    failed: int = 0
    """Contacts (or values) that could not be written: quarantined imports, values not of their type."""
    inserted: int = 0
    inserts_deferred: bool = False
    """Inserts waited for the processor to link the contacts imported so far (next cycle)."""
    unlinked: int = 0
    erased: int = 0
    unchanged: int = 0
    errors: list[str] = field(default_factory=list)

    def fail(self, reason: str) -> None:
        """Counts a failure and keeps its reason (the first ones)."""
        self.failed += 1
        if len(self.errors) < MAX_ERRORS_KEPT:
            self.errors.append(reason)


@dataclass
class _Plan:
    """What one page's merge decided."""

    to_tailor: dict[str, dict[str, str | None]] = field(default_factory=dict)
    """contact -> column -> canonical CRM value to import."""
    to_crm: dict[str, dict[str, Any]] = field(default_factory=dict)
    """contact -> column -> value to write."""
    bases_after_import: dict[str, list[BaseRow]] = field(default_factory=dict)
    bases_after_write: dict[str, list[BaseRow]] = field(default_factory=dict)
    agreed: list[BaseRow] = field(default_factory=list)


class CrmSync:
    """A declared CRM sync and what it needs to run a cycle."""

    def __init__(
        self,
        name: str,
        spec: CrmSyncSpec,
        db: Database,
        writer: EventWriter,
        bases: MergeBase,
        unlink: Unlink | None = None,
        hook: CrmHook | None = None,
    ) -> None:
        problems = spec.problems()
        if problems:
            raise ConnectorError(f"connector {name}: " + "; ".join(problems))
        self.name = name
        self.spec = spec
        self.dialect = dialect_of(spec.url)
        self.source_id = f"{self.dialect.name}:{name}"
        """The source id of the events this sync writes: never a Tailor-side change (no echo)."""
        self._db = db
        self._writer = writer
        self._bases = bases
        self._unlink = unlink
        self._hook = hook
        self.result = CrmSyncResult()
        """The current (or last) cycle's counts, kept up to date as it goes."""

    def _at(self, point: str) -> None:
        if self._hook is not None:
            self._hook(point)

    def run(self) -> CrmSyncResult:
        """Runs one cycle; a lost database raises SourceUnavailableError with what was done counted."""
        self.result = CrmSyncResult()
        table = ContactTable(self.name, self.spec, self.dialect)
        shape = EventShape(self.spec.import_mapping(), self.source_id, self.spec.record)
        run = EventImport(
            self._db, self._writer, shape, f"{self.dialect.name}:{self.spec.table}", "row", self.source_id
        )
        try:
            table.open()
            self._erase(table)
            linked = linked_contacts(self._db, self.spec)
            bases = self._bases.load(self.name)
            # An erased person's contacts are never read into Tailor again (even when kept in the CRM).
            erased = set(self._bases.erasures(self.name, done=True))
            seen: set[str] = set()
            for page in table.contacts():
                self.result.contacts_read += len(page)
                live = []
                for contact in page:
                    seen.add(contact.contact)
                    if contact.contact in erased:
                        continue
                    if contact.deleted:
                        if contact.contact in bases:
                            self._deleted(contact.contact)
                    else:
                        live.append(contact)
                plan = self._plan(live, linked, bases)
                self._bases.store(self.name, plan.agreed)
                self._import(run, live, plan)
                self._at("imported")
                self._write(table, live, plan)
            for gone in sorted(set(bases) - seen):
                self._deleted(gone)
            if self.spec.insert_new:
                # A contact imported but not yet linked would look like a profile without one.
                self._writer.flush()
                if imports_applied(self._db, self.source_id):
                    self._insert(table)
                else:
                    self.result.inserts_deferred = True
        finally:
            table.close()
            run.close()
        return self.result

    # -- merging ---------------------------------------------------------------------------------

    def _plan(
        self, page: list[Contact], linked: dict[str, LinkedContact], bases: dict[str, dict[str, Base]]
    ) -> _Plan:
        s, plan = self.spec, _Plan()
        for contact in page:
            ours = linked.get(contact.contact)
            base = bases.get(contact.contact, {})
            changed = False
            for column in s.identifiers:
                value = canonical(contact.values[column], "string")
                d = merge("crm", value, None, None, base.get(ID_PREFIX + column), self.source_id)
                changed |= self._take(plan, contact.contact, ID_PREFIX + column, column, d, None)
            for column, f in s.fields.items():
                try:
                    crm = canonical(contact.values[column], f.type)
                except ValueError as e:
                    self.result.fail(f"contact {contact.contact}: column {column!r}: {e}")
                    continue
                tailor = ours.traits.get(s.trait(column)) if ours else None
                if tailor is not None:
                    try:
                        tailor = replace(tailor, text=canonical(tailor.text, f.type))
                    except ValueError as e:
                        self.result.fail(f"contact {contact.contact}: trait {s.trait(column)!r}: {e}")
                        continue
                d = merge(f.owner, crm, contact.changed_at, tailor, base.get(column), self.source_id)
                self.result.conflicts += d.conflict
                changed |= self._take(plan, contact.contact, column, column, d, f.type)
            self.result.unchanged += not changed
        return plan

    def _take(self, plan: _Plan, contact: str, slot: str, column: str, d: Any, type_: str | None) -> bool:
        row: BaseRow = (contact, slot, d.value, d.tailor_seq)
        if d.action is Action.AGREE:
            plan.agreed.append(row)
        elif d.action is Action.TO_TAILOR:
            plan.to_tailor.setdefault(contact, {})[column] = d.value
            plan.bases_after_import.setdefault(contact, []).append(row)
        elif d.action is Action.TO_CRM:
            assert type_ is not None
            plan.to_crm.setdefault(contact, {})[column] = to_python(d.value, type_)
            plan.bases_after_write.setdefault(contact, []).append(row)
        return d.action in (Action.TO_TAILOR, Action.TO_CRM)

    # -- CRM -> Tailor ---------------------------------------------------------------------------

    def _import(self, run: EventImport, page: list[Contact], plan: _Plan) -> None:
        """Stores the CRM's changes as identify events of the contacts' records; bases move once durable."""
        s = self.spec
        chosen = [c for c in page if c.contact in plan.to_tailor]
        if not chosen:
            return
        columns: dict[str, list[str | None]] = {s.key: [c.contact for c in chosen]}
        for column in s.identifiers:
            columns[column] = [canonical(c.values[column], "string") for c in chosen]
        for column in s.fields:
            # Only the fields taken from the CRM: a trait Tailor changed must not be overwritten.
            columns[column] = [plan.to_tailor[c.contact].get(column) for c in chosen]
        names = list(columns)

        def payload(i: int) -> bytes:
            return msgspec.json.encode({n: columns[n][i] for n in names})

        chunk = RowChunk(
            {n: pa.array(v, pa.string()) for n, v in columns.items()},
            list(range(1, len(chosen) + 1)),
            payload,
            [],
            len(chosen),
        )
        receipt = run.submit(chunk).result()  # durable before any base moves
        run.collect(receipt)
        self._at("durable")
        rejected = set()
        for r in run.last_rejections:
            contact = chosen[(r.index or 1) - 1].contact
            rejected.add(contact)
            self.result.fail(f"contact {contact}: {r.reason}")
        rows = []
        for c in chosen:
            if c.contact in rejected:
                continue
            rows += plan.bases_after_import[c.contact]
            self.result.written_to_tailor += 1
            self.result.fields_to_tailor += sum(
                1 for slot in plan.bases_after_import[c.contact] if not slot[1].startswith(ID_PREFIX)
            )
        self._bases.store(self.name, rows)

    # -- Tailor -> CRM ---------------------------------------------------------------------------

    def _write(self, table: ContactTable, page: list[Contact], plan: _Plan) -> None:
        """Writes Tailor's changes, one optimistic UPDATE and commit per contact; bases move after commit."""
        for contact in page:
            values = plan.to_crm.get(contact.contact)
            if not values:
                continue
            try:
                written = table.update(contact, values)
                table.commit()
            except ConnectorError as e:  # this contact's write is refused; a lost link raises on
                self.result.fail(f"contact {contact.contact}: {str(e).splitlines()[0]}")
                continue
            self._at("written")
            if not written:
                self.result.deferred += 1
                continue
            self._bases.store(self.name, plan.bases_after_write[contact.contact])
            self.result.written_to_crm += 1
            self.result.fields_to_crm += len(values)

    # -- deletes, erasures, inserts --------------------------------------------------------------

    def _deleted(self, contact: str) -> None:
        if self.spec.on_delete == "unlink" and self._unlink is not None:
            self._unlink(f"record:{self.spec.record}:{contact}")
        self._bases.forget(self.name, [contact])
        self.result.unlinked += 1

    def _erase(self, table: ContactTable) -> None:
        pending = self._bases.erasures(self.name)
        if not pending:
            return
        if self.spec.on_erasure != "keep":
            for contact in pending:
                table.erase(contact, self.spec.on_erasure)
            table.commit()
            self.result.erased += len(pending)
        self._bases.erased(self.name, pending)

    def _insert(self, table: ContactTable) -> None:
        s = self.spec
        id_column = next(c for c, t in s.identifiers.items() if t == s.insert_when)
        for profile in profiles_without_contact(self._db, s):
            values: dict[str, Any] = {id_column: profile.identifier}
            for column, f in s.fields.items():
                text = profile.traits.get(s.trait(column))
                try:
                    values[column] = to_python(canonical(text, f.type), f.type)
                except ValueError as e:
                    self.result.fail(f"profile {profile.profile_id}: trait {s.trait(column)!r}: {e}")
                    values[column] = None
            if table.insert(profile.profile_id, values):
                self.result.inserted += 1
            table.commit()
