"""A store for profile and segment tests: send messages, move the clock, read what was computed."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec

from tailor.collect.writer import Submission
from tailor.datadir import init_data_dir
from tailor.profiles.catalog import SEGMENT, TRAIT
from tailor.runtime import Runtime

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
_ids = itertools.count()


class Store:
    """A runtime on a fresh data directory whose profiles stage reads a clock the test sets."""

    def __init__(self, path: Path, library: bool = False, reopen: bool = False) -> None:
        if not reopen:
            init_data_dir(path)
        self.now = T0
        self.rt = Runtime(path)
        self.rt.profiles.clock = lambda: self.now
        self.rt.writer.start()  # the processor runs when the test says, not in a thread
        if not (library or reopen):
            # Tests define what they test; the library is tested on its own.
            self.define_many([], drop_library=True)

    def close(self) -> None:
        self.rt.close()

    # -- writing -------------------------------------------------------------------------------------

    def send(self, *messages: dict[str, Any], process: bool = True) -> None:
        """Validates and stores messages (a message without a timestamp happens `now`), then processes."""
        raws = []
        for m in messages:
            m = {"messageId": f"m{next(_ids)}", "timestamp": self.now.isoformat(), **m}
            raws.append(msgspec.json.encode(m))
        rows, rejections = self.rt.validator.validate("src", raws, self.now)
        assert not rejections, rejections
        self.rt.writer.write(Submission("src", "batch", self.now, rows, rejections))
        if process:
            self.process()

    def process(self) -> None:
        self.rt.processor.run_once()

    def tick(self, delta: timedelta | None = None) -> None:
        """Moves the clock on and lets the stage look at whoever is due."""
        if delta is not None:
            self.now += delta
        self.rt.processor.refresh()

    def define_many(self, bodies: list[dict[str, Any]], drop_library: bool = False) -> None:
        service = self.rt.definitions
        if drop_library:
            with self.rt.processor.exclusive() as cur:
                from tailor.profiles.catalog import Catalog

                self.rt.profiles.install(cur, Catalog())
        if bodies:
            service.put_many(bodies)

    # -- reading -------------------------------------------------------------------------------------

    def pid(self, identifier: str) -> str:
        return self.rt.identity_service.resolve(identifier)

    def computed(self, identifier: str) -> dict[str, Any]:
        from tailor.profiles import view

        return view.computed(self.rt.db, self.pid(identifier))

    def golden(self, identifier: str) -> dict[str, Any]:
        from tailor.profiles import view

        return {k: v.value for k, v in view.golden(self.rt.db, self.pid(identifier)).items()}

    def members(self, segment: str) -> set[str]:
        """The user ids (or else profile ids) of a segment's members."""
        rows = self.rt.db.execute(
            """SELECT coalesce(min(n.value) FILTER (WHERE n.type = 'user_id'), m.profile_id)
            FROM segment_members m LEFT JOIN identity_nodes n USING (profile_id)
            WHERE m.segment = ? GROUP BY m.profile_id""",
            [segment],
        )
        return {r[0] for r in rows}

    def changes(self, segment: str) -> list[tuple[str, str, bool]]:
        """(user id or profile id, change, backfill) of a segment, in order."""
        rows = self.rt.db.execute(
            """SELECT coalesce((SELECT min(value) FROM identity_nodes n
                                WHERE n.profile_id = c.profile_id AND n.type = 'user_id'), c.profile_id),
                      change, backfill
            FROM segment_changes c WHERE segment = ? ORDER BY id""",
            [segment],
        )
        return [(str(a), str(b), bool(c)) for a, b, c in rows]


def track(user: str, event: str, when: datetime | None = None, **properties: Any) -> dict[str, Any]:
    """A track message of a user id."""
    m: dict[str, Any] = {"type": "track", "userId": user, "event": event, "properties": properties}
    if when is not None:
        m["timestamp"] = when.isoformat()
    return m


__all__ = ["SEGMENT", "T0", "TRAIT", "Store", "track"]
