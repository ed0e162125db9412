"""What the segment builder offers to choose from: event names, traits, computed traits, segments, purposes.

Event names come from the small `event_volume` table; trait names from the golden record, counted
once per move of the profiles stage's offset; property keys of an event from its latest
occurrences only (the last `PROPERTY_SAMPLE` events of the log), which is what a person building a
segment needs and keeps the read at the end of the log.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import msgspec

from tailor.profiles.catalog import SEGMENT, TRAIT
from tailor.profiles.comparisons import OPERATORS
from tailor.segments.definitions import NUMERIC_AGGREGATES

if TYPE_CHECKING:
    from tailor.runtime import Runtime

PROPERTY_SAMPLE = 50_000
TOUCH_CHANNELS = ("web", "app", "email", "sms", "server", "crm", "call_centre", "checkout")
"""Values of the `channel` field (see `tailor.identity.service.TOUCH_CHANNEL`)."""


class EventName(msgspec.Struct):
    """An event or page name with its message type and how often it occurred."""

    type: str
    name: str
    events: int


class Vocabulary(msgspec.Struct):
    """Everything a segment condition can name."""

    events: list[EventName]
    traits: list[tuple[str, int]]
    """Golden-record traits and how many profiles have each."""
    computed: list[str]
    segments: list[str]
    purposes: list[str]
    channels: list[str]
    operators: list[str]
    aggregates: list[str]


class PropertyKey(msgspec.Struct):
    """A key of an event's properties, how often it was seen in the sample, and a few values."""

    key: str
    seen: int
    examples: list[str]


class VocabularyService:
    """Reads and caches the vocabulary of one store."""

    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime
        self._traits: tuple[int, list[tuple[str, int]]] = (-1, [])
        self._lock = threading.Lock()

    def vocabulary(self) -> Vocabulary:
        rt = self._runtime
        events = [
            EventName(t, n, int(c))
            for t, n, c in rt.db.execute(
                """SELECT type, event, sum(events)::BIGINT FROM event_volume WHERE event <> ''
                GROUP BY ALL ORDER BY 3 DESC, 2"""
            )
        ]
        return Vocabulary(
            events=events,
            traits=self._golden_traits(),
            computed=rt.definitions.names(TRAIT),
            segments=rt.definitions.names(SEGMENT),
            purposes=list(rt.config.privacy.all_purposes()),
            channels=list(TOUCH_CHANNELS),
            operators=list(OPERATORS),
            aggregates=list(NUMERIC_AGGREGATES),
        )

    def _golden_traits(self) -> list[tuple[str, int]]:
        offset = self._runtime.processor.offsets().get("profiles", -1)
        with self._lock:
            if self._traits[0] == offset and offset >= 0:
                return self._traits[1]
        rows = self._runtime.db.execute(
            "SELECT trait, count(*) FROM profile_traits GROUP BY trait ORDER BY 2 DESC, 1"
        )
        traits = [(str(t), int(n)) for t, n in rows]
        with self._lock:
            self._traits = (offset, traits)
        return traits

    def properties(self, event: str) -> list[PropertyKey]:
        """The property keys of the latest occurrences of an event (or page name)."""
        head = self._runtime.processor.head()
        rows = self._runtime.db.execute(
            f"""WITH recent AS (
                SELECT properties::JSON AS p FROM events
                WHERE seq > {max(0, head - PROPERTY_SAMPLE)} AND coalesce(event, name) = ?
                  AND properties IS NOT NULL AND json_type(properties::JSON) = 'OBJECT'
            ), keyed AS (SELECT unnest(json_keys(p)) AS key, p FROM recent)
            SELECT key, count(*),
                   list(DISTINCT json_extract_string(p, '$."' || replace(key, '"', '') || '"'))[1:5]
            FROM keyed GROUP BY key ORDER BY 2 DESC, 1 LIMIT 100""",
            [event],
        )
        return [PropertyKey(str(k), int(n), [str(x) for x in ex if x is not None]) for k, n, ex in rows]
