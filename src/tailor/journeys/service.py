"""Journeys of one data directory: definitions (files, API, CLI), the runner, and campaign results."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tailor.journeys.config import JourneysConfig
from tailor.journeys.exceptions import InvalidJourney
from tailor.journeys.results import JourneyResults, journey_results
from tailor.journeys.runner import JourneyRunner
from tailor.journeys.store import (
    SavedJourney,
    create_journey_schema,
    delete_journey,
    save_journey,
    saved_journey,
    saved_journeys,
    step_counts,
)
from tailor.journeys.validate import Catalogue, check_journey
from tailor.profiles.reading import load_documents

if TYPE_CHECKING:
    from tailor.channels.service import Messaging
    from tailor.store.database import Database

log = logging.getLogger(__name__)

JOURNEYS_DIR = "journeys"
"""Journey files (YAML or JSON) in the data directory, applied when the server starts."""


class JourneyService:
    """Saves, checks, runs and measures journeys."""

    def __init__(
        self,
        data_dir: Path,
        db: Database,
        messaging: Messaging,
        config: JourneysConfig,
        applied_head: Any,
        default_timezone: str = "UTC",
    ) -> None:
        self.data_dir = data_dir
        self.db = db
        self.messaging = messaging
        self.config = config
        conn = messaging.connect()
        try:
            create_journey_schema(conn)
        finally:
            conn.close()
        self.runner = JourneyRunner(
            db, messaging.connect, messaging.outbox, config, applied_head, messaging.notify, default_timezone
        )

    def catalogue(self) -> Catalogue:
        """The segments and templates a journey may name now."""
        segments = frozenset(
            str(n) for (n,) in self.db.execute("SELECT name FROM definitions WHERE kind = 'segment'")
        )
        conn = self.messaging.connect()
        try:
            templates = {
                name: self.messaging.templates.get(conn, name, version).definition
                for name, version, _ in self.messaging.templates.names(conn)
            }
        finally:
            conn.close()
        return Catalogue(segments, templates)

    def put(self, body: dict[str, Any]) -> SavedJourney:
        """Checks and saves a journey (a new version when it exists); InvalidJourney lists every problem."""
        journey = check_journey(body, self.catalogue())
        conn = self.messaging.connect()
        try:
            saved = save_journey(conn, journey.name, dict(body))
        finally:
            conn.close()
        self.runner.wake()
        return saved

    def put_many(self, bodies: list[dict[str, Any]]) -> list[SavedJourney]:
        """Checks every journey first, then saves them all (none when any is invalid)."""
        catalogue = self.catalogue()
        problems = []
        for i, body in enumerate(bodies):
            try:
                check_journey(body, catalogue)
            except InvalidJourney as e:
                prefix = f"[{i}]" if len(bodies) > 1 else ""
                problems += [
                    type(p)(f"{prefix}{'.' if prefix and p.path else ''}{p.path}", p.message)
                    for p in e.problems
                ]
        if problems:
            names = [b.get("name") for b in bodies]
            raise InvalidJourney(str(names[0]) if len(names) == 1 else None, problems)
        return [self.put(body) for body in bodies]

    def saved(self) -> list[SavedJourney]:
        """Every saved journey."""
        conn = self.messaging.connect()
        try:
            return saved_journeys(conn)
        finally:
            conn.close()

    def get(self, name: str) -> SavedJourney:
        """One journey; UnknownJourneyError if missing."""
        conn = self.messaging.connect()
        try:
            return saved_journey(conn, name)
        finally:
            conn.close()

    def delete(self, name: str) -> int:
        """Deletes a journey; its people still on it exit. Returns how many."""
        conn = self.messaging.connect()
        try:
            return delete_journey(conn, name)
        finally:
            conn.close()

    def counts(self, name: str) -> dict[str, dict[str, int]]:
        """Per step, how many people went through it (by outcome) and are on it now."""
        self.get(name)
        conn = self.messaging.connect()
        try:
            return step_counts(conn, name)
        finally:
            conn.close()

    def results(self, name: str) -> JourneyResults:
        """The campaign results of a journey: per step and variant, and lift over holdout and control."""
        saved = self.get(name)
        return journey_results(self.db, self.messaging.path, saved)

    def load_files(self) -> list[SavedJourney]:
        """Applies the journey files in DATA/journeys/ (each file alone: a bad one is logged, not fatal)."""
        folder = self.data_dir / JOURNEYS_DIR
        if not folder.is_dir():
            return []
        saved = []
        for path in sorted(folder.iterdir()):
            if path.suffix.lower() not in (".yaml", ".yml", ".json"):
                continue
            try:
                saved += self.put_many(load_documents(path))
            except InvalidJourney as e:
                log.error("%s: %s", path, e)
        return saved

    def start(self) -> None:
        """Applies the journey files and starts the runner (when enabled)."""
        self.load_files()
        if self.config.enabled:
            self.runner.start()

    def close(self) -> None:
        """Stops the runner."""
        self.runner.close()


__all__ = ["JOURNEYS_DIR", "JourneyService"]
