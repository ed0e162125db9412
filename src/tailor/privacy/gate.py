"""Consent and erasure at collection: what happens to a validated event before it is staged.

For each event, in this order:

1. an event naming (by userId, anonymousId or previousId) an identifier of an erased person is
   dropped and counted against that erasure;
2. a consent payload that cannot be read is quarantined with the path of each bad field;
3. the source's policy (`[privacy.sources.NAME]`) is applied to people without analytics
   consent (a denial carried by the event itself, or one recorded for its userId or anonymousId;
   with `model = "opt_in"`, anything but a grant): `anonymise` stores the event without anything
   that identifies the person (no user id, a daily-rotating keyed hash for the anonymous id, no
   traits, device id or external ids, the IP truncated, chosen properties dropped), so identity
   resolution cannot stitch it; `refuse` does not store it (counted). Events that record a
   consent choice (identify with `traits.consent`, Consent Updated, Unsubscribed, Subscribed)
   keep their identifiers: the choice must reach the person's profile.

The per-event cost is a few substring tests and dictionary lookups; hashes are computed only
while tombstones exist, and cached per identifier.
"""

from __future__ import annotations

import hashlib
import ipaddress
import threading
from datetime import UTC, datetime
from typing import Any

import msgspec

from tailor.collect.messages import FieldError, Rejection
from tailor.collect.validate import EventRows
from tailor.privacy.config import PrivacyConfig, SourcePolicy
from tailor.privacy.consent import CONSENT_EVENT, SUBSCRIBED, UNSUBSCRIBED, ConsentParser
from tailor.privacy.exceptions import ConsentPayloadError
from tailor.privacy.secret import KeyedHash
from tailor.store.database import Database

_CACHE_LIMIT = 200_000
_CONSENT_ACTS = (CONSENT_EVENT, UNSUBSCRIBED, SUBSCRIBED)


def truncate_ip(ip: str) -> str | None:
    """The network part of an address: IPv4 /24, IPv6 /48; None for anything else."""
    try:
        address = ipaddress.ip_address(ip.strip())
    except ValueError:
        return None
    prefix = 24 if address.version == 4 else 48
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False).network_address)


class CollectionGate:
    """Applies tombstones, consent validation and source policies to validated events."""

    def __init__(self, config: PrivacyConfig, hasher: KeyedHash, secret: bytes) -> None:
        self.config = config
        self.parser = ConsentParser(config)
        self._hasher = hasher
        self._secret = secret
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._tombstones: dict[str, str] = {}
        self._verdicts: dict[str, str | None] = {}
        self._analytics: dict[str, str] = {}
        self._source_names: dict[str, str] = {}
        self._versions: tuple[Any, ...] = ()
        self.pending_drops: dict[str, int] = {}
        self.dropped = 0
        """Events dropped because they name an erased person."""
        self.refused = 0
        """Events not stored under a `refuse` policy."""
        self.anonymised = 0

    # -- state, refreshed from the store ------------------------------------------------------------

    def refresh(self, db: Database, source_names: dict[str, str] | None = None) -> None:
        """Reloads tombstones and recorded analytics choices when they changed; saves drop counts."""
        if source_names is not None:
            self._source_names = source_names
        # One refresh at a time writes the counts: a second caller waits for the first's update,
        # so whoever returns from here has every drop counted before it in the store.
        with self._flush_lock:
            with self._lock:
                drops, self.pending_drops = self.pending_drops, {}
            for erasure_id, n in drops.items():
                db.execute(
                    "UPDATE privacy_erasures SET dropped_events = dropped_events + ? WHERE erasure_id = ?",
                    [n, erasure_id],
                )
        versions = tuple(
            db.execute(
                """SELECT (SELECT count(*) FROM privacy_tombstones),
                          (SELECT count(*) FROM consent_current WHERE purpose = 'analytics'),
                          (SELECT max(seq) FROM consent_current WHERE purpose = 'analytics')"""
            )[0]
        )
        if versions == self._versions:
            return
        tombstones = dict(db.execute("SELECT hash, erasure_id FROM privacy_tombstones"))
        analytics = {
            str(v): str(s)
            for v, s in db.execute(
                """SELECT n.value, arg_max(c.status, c.recorded_at) FROM consent_current c
                JOIN identity_nodes n USING (profile_id)
                WHERE c.purpose = 'analytics' AND c.channel = '*' AND n.type IN ('user_id', 'anonymous_id')
                GROUP BY n.value"""
            )
        }
        with self._lock:
            self._tombstones = tombstones
            self._verdicts = {}
            self._analytics = analytics
            self._versions = versions

    def forbid(self, hashes: dict[str, str]) -> None:
        """Adds tombstones at once (an erasure in progress), before the store has them."""
        with self._lock:
            self._tombstones = {**self._tombstones, **hashes}
            self._verdicts = {}

    # -- per request --------------------------------------------------------------------------------

    def _erased(self, type: str, value: str | None) -> str | None:
        if value is None:
            return None
        key = f"{type}:{value}"
        if key in self._verdicts:
            return self._verdicts[key]
        verdict = self._tombstones.get(self._hasher.of(type, value))
        if len(self._verdicts) > _CACHE_LIMIT:
            self._verdicts = {}
        self._verdicts[key] = verdict
        return verdict

    def apply(
        self,
        source_id: str,
        rows: EventRows,
        rejections: list[Rejection],
        messages: int,
        indexed: bool,
    ) -> tuple[EventRows, list[Rejection]]:
        """The rows to stage and the rejections to quarantine, after tombstones, validation and policy."""
        policy = self.config.policy(self._source_names.get(source_id), source_id)
        tombstones, analytics = bool(self._tombstones), self._analytics
        if not len(rows):
            return rows, rejections
        positions: list[int | None]
        if indexed:
            rejected = {r.index for r in rejections}
            positions = [i for i in range(messages) if i not in rejected]
        else:
            positions = [None] * len(rows)
        # Only some rows need a look: comprehensions find them faster than one loop over all.
        ctx, traits_col, types, events = rows.context, rows.traits, rows.type, rows.event
        carrying = {i for i, c in enumerate(ctx) if c is not None and '"consent"' in c}
        carrying.update(
            i
            for i, tr in enumerate(traits_col)
            if tr is not None and types[i] == "identify" and '"consent"' in tr
        )
        carrying.update(i for i, e in enumerate(events) if e in _CONSENT_ACTS)
        every = tombstones or (policy.analytics != "keep" and (bool(analytics) or policy.model == "opt_in"))
        look = range(len(rows)) if every else sorted(carrying)
        drop: set[int] = set()
        anonymise: list[int] = []
        moved: list[Rejection] = []
        for i in look:
            t, event, context, traits = types[i], events[i], ctx[i], traits_col[i]
            if tombstones:
                erasure = (
                    self._erased("user_id", rows.user_id[i])
                    or self._erased("anonymous_id", rows.anonymous_id[i])
                    or self._erased("anonymous_id", rows.previous_id[i])
                )
                if erasure is not None:
                    with self._lock:
                        self.pending_drops[erasure] = self.pending_drops.get(erasure, 0) + 1
                        self.dropped += 1
                    drop.add(i)
                    continue
            status: str | None = None
            act = False
            if i in carrying:
                try:
                    found = self.parser.message(t, event, rows.properties[i], traits, context)
                except ConsentPayloadError as e:
                    moved.append(Rejection(positions[i], e.errors, bytes(rows.raw[i])))
                    drop.add(i)
                    continue
                except msgspec.DecodeError as e:
                    error = FieldError("$", f"not valid JSON: {e}")
                    moved.append(Rejection(positions[i], [error], bytes(rows.raw[i])))
                    drop.add(i)
                    continue
                act = (
                    t == "identify" and traits is not None and '"consent"' in traits
                ) or event in _CONSENT_ACTS
                status = next((s.status for s in found if s.purpose == "analytics"), None)
            if policy.analytics != "keep" and not act:
                if status is None and analytics:
                    status = analytics.get(rows.user_id[i] or "") or analytics.get(rows.anonymous_id[i] or "")
                lacking = status == "denied" if policy.model == "opt_out" else status != "granted"
                if lacking:
                    if policy.analytics == "refuse" or t == "alias":
                        with self._lock:
                            self.refused += 1
                        drop.add(i)
                        continue
                    anonymise.append(i)
        if moved:
            rejections = sorted([*rejections, *moved], key=lambda r: -1 if r.index is None else r.index)
        if anonymise:
            self._anonymise(rows, anonymise, policy)
        if not drop:
            return rows, rejections
        return _select(rows, [i for i in range(len(rows)) if i not in drop]), rejections

    # -- anonymising --------------------------------------------------------------------------------

    def _pseudonym(self, visitor: str) -> str:
        # A keyed hash rotating daily: one visitor's events of a day stay together for analytics,
        # but never link to a person or to the same visitor's other days.
        day = datetime.now(UTC).date().isoformat().encode()
        digest = hashlib.blake2b(
            visitor.encode("utf-8", "surrogatepass"),
            key=self._secret,
            salt=day[:16].ljust(16, b"\0"),
            digest_size=12,
        )
        return "anon_" + digest.hexdigest()

    def _anonymise(self, rows: EventRows, indices: list[int], policy: SourcePolicy) -> None:
        with self._lock:
            self.anonymised += len(indices)
        for i in indices:
            visitor = rows.anonymous_id[i] or rows.user_id[i] or ""
            rows.anonymous_id[i] = self._pseudonym(visitor)
            rows.user_id[i] = None
            rows.previous_id[i] = None
            rows.traits[i] = None
            rows.context[i] = _clean_context(rows.context[i], policy.truncate_ip)
            if rows.properties[i] is not None and policy.drop_properties:
                props = msgspec.json.decode(rows.properties[i] or "{}")
                for key in policy.drop_properties:
                    props.pop(key, None)
                rows.properties[i] = msgspec.json.encode(props).decode()
            rows.raw[i] = msgspec.json.encode(
                {"type": rows.type[i], "anonymousId": rows.anonymous_id[i], "event": rows.event[i]}
            )


def _clean_context(context: str | None, truncate: bool) -> str:
    ctx: dict[str, Any] = {} if context is None else msgspec.json.decode(context)
    for key in ("traits", "externalIds"):
        ctx.pop(key, None)
    device = ctx.get("device")
    if isinstance(device, dict):
        device.pop("id", None)
        device.pop("advertisingId", None)
    if truncate and isinstance(ctx.get("ip"), str):
        ctx["ip"] = truncate_ip(ctx["ip"])
    ctx["anonymised"] = "no analytics consent"
    return msgspec.json.encode(ctx).decode()


def _select(rows: EventRows, keep: list[int]) -> EventRows:
    out = EventRows()
    for name in EventRows.__dataclass_fields__:
        column = getattr(rows, name)
        setattr(out, name, [column[i] for i in keep])
    return out
