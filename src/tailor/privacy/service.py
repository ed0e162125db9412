"""The privacy operations on one store: record consent, decide, export a person, erase a person."""

from __future__ import annotations

import logging
import time
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import msgspec

from tailor.collect.validate import EventRows, dedupe_hash
from tailor.collect.writer import Submission
from tailor.identity.service import BadIdentifierError, NotFoundError
from tailor.privacy.builtin import builtin_parts
from tailor.privacy.compaction import Compaction, compact
from tailor.privacy.consent import CONSENT_EVENT, ConsentParser
from tailor.privacy.decisions import ConsentDecision, ConsentReader
from tailor.privacy.exceptions import AlreadyErasedError, PersonNotFoundError
from tailor.privacy.export import ExportDocument, trait_versions
from tailor.privacy.gate import CollectionGate
from tailor.privacy.person import Person, drop_materialised, load_person, materialise
from tailor.privacy.registry import PersonalData, parts_of
from tailor.privacy.retention import RetentionResult, apply_retention
from tailor.privacy.secret import KeyedHash, load_secret
from tailor.privacy.tombstone import ErasureGuard, tombstone_of
from tailor.store.database import run

if TYPE_CHECKING:
    from tailor.runtime import Runtime

log = logging.getLogger(__name__)

API_SOURCE = "api:consent"


class ErasureResult(msgspec.Struct):
    """What an erasure did: counts per table, never who was erased."""

    erasure_id: str
    erased_at: datetime
    identifiers: int
    rows_deleted: dict[str, int]
    seconds: float
    compaction: Compaction | None


class ErasureRecord(msgspec.Struct):
    """The audit record of one erasure (it holds no personal data)."""

    erasure_id: str
    erased_at: datetime
    actor: str
    identifiers: int
    rows_deleted: dict[str, int]
    compacted_at: datetime | None
    dropped_events: int


class PrivacyService:
    """Consent, export and erasure over a runtime's store, identity graph and processor."""

    def __init__(self, runtime: Runtime) -> None:
        self._rt = runtime
        self.config = runtime.config.privacy
        self.secret = load_secret(runtime.data_dir)
        self.hasher = KeyedHash(self.secret)
        self.consent = ConsentReader(runtime.db, self.config)
        self.parser = ConsentParser(self.config)
        self.gate = CollectionGate(self.config, self.hasher, self.secret)
        self.guard = next((s for s in runtime.processor.stages if isinstance(s, ErasureGuard)), None)

    def parts(self) -> list[PersonalData]:
        """Every part of the store holding personal data: the foundation's, registered ones, stages'."""
        return [*builtin_parts(), *parts_of(list(self._rt.processor.stages))]

    # -- finding the person --------------------------------------------------------------------------

    def resolve(self, identifier: str) -> str:
        """The current profile id for an identifier; 409 when it was erased, 404 when unknown."""
        service = self._rt.identity_service
        try:
            return service.resolve(identifier)
        except NotFoundError as e:
            type, value = service.parse(identifier)
            cur = self._rt.db.cursor()
            try:
                stone = tombstone_of(cur, self.hasher, type, value)
            finally:
                cur.close()
            if stone is not None:
                raise AlreadyErasedError(
                    f"the person holding this {type} was erased at {stone[1]} (erasure {stone[0]});"
                    " nothing is held about them any more"
                ) from e
            raise PersonNotFoundError(str(e)) from e

    def consent_for(self, profile_id: str, purpose: str, channel: str) -> ConsentDecision:
        """Whether `purpose` on `channel` is allowed for a profile now, and why (for send-time checks)."""
        try:
            pid = self._rt.identity_service.resolve_id(profile_id)
        except NotFoundError:
            self.consent.check(purpose, channel)
            cur = self._rt.db.cursor()
            try:
                stone = tombstone_of(cur, self.hasher, "profile", profile_id)
            finally:
                cur.close()
            if stone is None:
                raise
            return ConsentDecision(
                profile_id, purpose, channel, False, "erased", f"the person was erased at {stone[1]}"
            )
        return self.consent.consent_for(pid, purpose, channel)

    # -- recording consent ---------------------------------------------------------------------------

    def record_consent(self, identifier: str, statement: dict[str, object], source: str = API_SOURCE) -> int:
        """Stores a `Consent Updated` event for the person holding an identifier; returns its seq.

        The identifier need not be known yet: consent may be given before anything else is seen.
        """
        type, value = self._rt.identity_service.parse(identifier)
        if type == "profile":
            raise BadIdentifierError(
                "consent is recorded against an identifier such as email:..., not a profile id"
            )
        self.parser.event(statement, "api", path="$")
        rows = consent_rows([(type, value, statement, None)], source)
        receipt = self._rt.writer.write(Submission(source, "consent", datetime.now(UTC), rows, []))
        self._rt.processor.run_once()
        return receipt.seqs[0] if receipt.seqs else 0

    # -- export --------------------------------------------------------------------------------------

    def export(self, identifier: str) -> ExportDocument:
        """Everything held about the person holding `identifier`."""
        self._rt.processor.run_once()
        pid = self.resolve(identifier)
        with self._rt.processor.exclusive() as cur:
            person = load_person(cur, pid)
            materialise(cur, person, self._rt.identity.normaliser)
            try:
                sections = {p.name: p.export(cur) for p in self.parts()}
            finally:
                drop_materialised(cur)
        sections = {name: rows for name, rows in sections.items() if rows}
        return ExportDocument(
            profile_id=pid,
            profile_ids=person.profile_ids,
            identifiers=[{"type": t, "value": v} for t, v in person.identifiers],
            exported_at=datetime.now(UTC),
            consent=self.consent.current(pid),
            traits=trait_versions(sections.get("events", [])),
            counts={name: len(rows) for name, rows in sections.items()},
            sections=sections,
        )

    # -- erasure -------------------------------------------------------------------------------------

    def erase(self, identifier: str, actor: str = "cli", compact_now: bool | None = None) -> ErasureResult:
        """Deletes the person holding `identifier` everywhere, leaves a tombstone and an audit record."""
        started = time.perf_counter()
        rt = self._rt
        rt.processor.run_once()  # every acknowledged event stitched, so none of theirs is missed
        pid = self.resolve(identifier)
        erasure_id = f"er_{uuid.uuid4().hex[:16]}"
        with rt.processor.exclusive() as cur:
            person = load_person(cur, pid)
            hashes = self._tombstone_hashes(person)
            # From here on the collector drops their events; what it already took is loaded now.
            self.gate.forbid(dict.fromkeys(hashes, erasure_id))
            rt.writer.flush()
            materialise(cur, person, rt.identity.normaliser)
            counts: dict[str, int] = {}
            erased_at = datetime.now(UTC)
            cur.execute("BEGIN")
            try:
                for part in self.parts():
                    counts[part.name] = part.erase(cur)
                run(
                    cur,
                    "INSERT INTO privacy_tombstones SELECT unnest(?::VARCHAR[]), ?, ?",
                    [hashes, erasure_id, erased_at],
                )
                run(
                    cur,
                    "INSERT INTO privacy_erasures VALUES (?, ?, ?, ?, ?, NULL, 0)",
                    [
                        erasure_id,
                        erased_at,
                        actor,
                        len(person.identifiers),
                        msgspec.json.encode(counts).decode(),
                    ],
                )
                cur.execute("COMMIT")
            except Exception:
                cur.execute("ROLLBACK")
                raise
            finally:
                drop_materialised(cur)
            if self.guard is not None:
                self.guard.active = True
        rt.writer.events_total -= counts.get("events", 0)
        # CRM syncs delete or blank the person's contacts at their next cycle (per `on_erasure`).
        rt.connectors.erased(person.identifiers, erasure_id)
        compaction = None
        if self.config.compact_after_erasure if compact_now is None else compact_now:
            compaction = self.compact()
        return ErasureResult(
            erasure_id, erased_at, len(person.identifiers), counts, time.perf_counter() - started, compaction
        )

    def _tombstone_hashes(self, person: Person) -> list[str]:
        ids = [*person.identifiers, *(("profile", p) for p in person.profile_ids)]
        return sorted({self.hasher.of(t, v) for t, v in ids})

    def compact(self) -> Compaction:
        """Makes the bytes of everything deleted so far leave the data directory's files."""
        with self._rt.processor.exclusive():
            result = compact(self._rt.db, self._rt.writer.loader)
        self._rt.db.execute("UPDATE privacy_erasures SET compacted_at = now() WHERE compacted_at IS NULL")
        return result

    def retain(self, now: datetime | None = None, compact_now: bool = True) -> RetentionResult:
        """Applies the retention rules now, then compacts if anything was deleted."""
        rt = self._rt
        rt.writer.flush()
        sources = {s.name: s.id for s in rt.keyring.sources()}
        with rt.processor.exclusive():
            result = apply_retention(rt.db, self.config.retention, sources, now)
        rt.writer.events_total -= result.total
        if result.total and compact_now:
            self.compact()
        return result

    def erasures(self) -> list[ErasureRecord]:
        """The audit records of every erasure, newest first."""
        return [
            ErasureRecord(e, at, actor, n, msgspec.json.decode(rows), compacted, dropped)
            for e, at, actor, n, rows, compacted, dropped in self._rt.db.execute(
                """SELECT erasure_id, erased_at, actor, identifiers, rows_deleted, compacted_at,
                       dropped_events + coalesce(
                           (SELECT sum(d.events) FROM privacy_erasure_drops d
                            WHERE d.erasure_id = e.erasure_id), 0)
                FROM privacy_erasures e ORDER BY erased_at DESC"""
            )
        ]


def consent_rows(items: list[tuple[str, str, dict[str, object], datetime | None]], source: str) -> EventRows:
    """`Consent Updated` events naming each person by an identifier (as `context.externalIds`)."""
    rows = EventRows()
    encode = msgspec.json.encode
    for type, value, statement, at in items:
        message_id = f"consent-{uuid.uuid4().hex}"
        user_id = value if type == "user_id" else None
        anonymous_id = value if type == "anonymous_id" else None
        context = None if user_id or anonymous_id else {"externalIds": [{"type": type, "id": value}]}
        rows.message_id.append(message_id)
        rows.dedupe_hash.append(dedupe_hash(source, message_id))
        rows.type.append("track")
        rows.event.append(CONSENT_EVENT)
        rows.name.append(None)
        rows.user_id.append(user_id)
        rows.anonymous_id.append(anonymous_id)
        rows.group_id.append(None)
        rows.previous_id.append(None)
        rows.original_timestamp.append(at)
        rows.sent_at.append(None)
        rows.properties.append(encode(statement).decode())
        rows.traits.append(None)
        rows.context.append(None if context is None else encode(context).decode())
        rows.integrations.append(None)
        rows.raw.append(encode({"type": "track", "event": CONSENT_EVENT, "properties": statement}))
    return rows
