"""The running parts of one data directory: database, keyring, event writer and processor."""

from __future__ import annotations

import logging
from pathlib import Path

from tailor.access.control import AccessControl
from tailor.channels.consent import PrivacyConsent
from tailor.channels.events import MESSAGING_SOURCE
from tailor.channels.relay import WriterSink
from tailor.channels.service import Messaging
from tailor.collect.loader import EventLoader
from tailor.collect.validate import MessageValidator
from tailor.collect.writer import EventWriter
from tailor.config import TailorConfig, load_config
from tailor.connectors.records import RecordTable
from tailor.connectors.service import ConnectorService
from tailor.datadir import require_data_dir
from tailor.identity import IdentifierNormaliser, IdentityGraph
from tailor.identity.record_matching import RecordMatching
from tailor.identity.service import IdentityService
from tailor.journeys.service import JourneyService
from tailor.keyring import KEYRING_FILE, KeyCache, Keyring, UnknownSourceError
from tailor.privacy.consent_stage import ConsentStage
from tailor.privacy.scheduler import PrivacyScheduler
from tailor.privacy.service import PrivacyService
from tailor.privacy.tombstone import ErasureGuard
from tailor.process import Processor, Stage
from tailor.process.priority import lower_duckdb_workers
from tailor.process.volume import EventVolume
from tailor.profiles.service import DefinitionService
from tailor.profiles.stage import ProfileStage
from tailor.store import EventLog, open_database
from tailor.store.staging import STAGING_DIR, StagingLog

log = logging.getLogger(__name__)


def default_stages(config: TailorConfig | None = None) -> list[Stage]:
    """The processing stages, in the order each micro-batch passes through them."""
    config = config or TailorConfig()
    identity = config.identity
    graph = IdentityGraph(IdentifierNormaliser(identity.normalisation), identity.limits)
    matching = RecordMatching(normaliser=graph.normaliser)
    # The erasure guard first: events of erased people must reach no other stage. Consent comes
    # before profiles, whose segments can require it.
    guard = ErasureGuard(graph.normaliser)
    return [
        guard,
        EventVolume(),
        RecordTable(),
        matching,
        graph,
        ConsentStage(config.privacy),
        ProfileStage(config.profiles),
    ]


class Runtime:
    """Opens a data directory and owns everything that runs against it."""

    def __init__(self, data_dir: Path, config: TailorConfig | None = None) -> None:
        self.data_dir = require_data_dir(data_dir)
        self.config = config or load_config(data_dir)
        store = self.config.store
        self.db = open_database(data_dir, store.checkpoint_threshold_mb, store.compression)
        self.keyring = Keyring(data_dir / KEYRING_FILE)
        self.keys = KeyCache(self.keyring)
        self.access = AccessControl(self.data_dir, self.config.access)
        collect = self.config.collect
        self.validator = MessageValidator(collect.max_event_bytes)
        proc = self.config.processor
        staging = StagingLog(self.data_dir / STAGING_DIR, collect.staging_segment_mb * 1024 * 1024)
        # Loading what a previous process staged but did not load happens here, before serving.
        loader = EventLoader(self.db, staging, collect.load_events, collect.load_delay_ms / 1000)
        self.writer = EventWriter(
            self.db,
            loader,
            collect.max_pending_events,
            collect.max_commit_events,
            collect.max_unloaded_events,
        )
        # Readers of the event log see every acknowledged event: they wait for the loader first.
        self.events = EventLog(self.db, sync=self.writer.flush)
        stages = default_stages(self.config)
        self.identity = next(s for s in stages if isinstance(s, IdentityGraph))
        self.identity_matching = next(s for s in stages if isinstance(s, RecordMatching))
        self.processor = Processor(
            self.db,
            stages,
            proc.max_batch_events,
            proc.interval_ms / 1000,
            head_source=lambda: loader.loaded_head,
            catch_up=self.writer.flush,
            load_acknowledged=proc.load_acknowledged,
            nice=proc.nice,
        )

        loader.on_load = self.processor.wake
        if proc.load_acknowledged:
            loader.on_stage = self.processor.wake
        self.identity_service = IdentityService(self.db, self.processor, self.identity)
        self.profiles = next(s for s in stages if isinstance(s, ProfileStage))
        self.definitions = DefinitionService(self.db, self.processor, self.profiles)
        self.connectors = ConnectorService(self.data_dir, self.db, self.writer)
        self.connectors.unlink = self._unlink_record
        self.privacy = PrivacyService(self)
        self.privacy_scheduler = PrivacyScheduler(self)
        self.privacy_scheduler.tick()
        self.messaging = Messaging(
            self.data_dir,
            self.config.channels,
            WriterSink(self.validator, self.writer, self._messaging_source()),
            consent=PrivacyConsent(self.privacy, self.db),
        )
        self.journeys = JourneyService(
            self.data_dir,
            self.db,
            self.messaging,
            self.config.journeys,
            lambda: self.processor.offsets()[self.profiles.name],
            self.config.channels.rules.default_timezone,
        )
        self.processor.on_batch.append(self.journeys.runner.wake)

    def _unlink_record(self, identifier: str) -> None:
        """Blocks a deleted CRM contact's record identifier in its profile (if it is in one)."""
        from tailor.identity.exceptions import IdentityError

        try:
            profile_id = self.identity_service.resolve(identifier)
            if len(self.identity_service.identifiers(profile_id)) > 1:
                self.identity_service.split(profile_id, block=identifier, note="CRM contact deleted")
        except IdentityError:
            log.info("%s is in no profile: nothing to unlink", identifier)

    def _messaging_source(self) -> str:
        """The id of the source that tracking events are collected under (created on first use)."""
        try:
            return self.keyring.source_id(MESSAGING_SOURCE)
        except UnknownSourceError:
            return self.keyring.add_source(MESSAGING_SOURCE)[0]

    def start(self) -> None:
        """Starts the writer, processor and dispatcher threads."""
        cur = self.db.cursor()
        try:
            lower_duckdb_workers(cur, self.config.processor.nice)
        finally:
            cur.close()
        self.writer.start()
        self.processor.start()
        self.connectors.start()
        self.privacy_scheduler.start()
        self.messaging.start()
        self.journeys.start()

    def close(self) -> None:
        """Stops the threads after committing what was submitted, then checkpoints and closes the store."""
        self.journeys.close()
        self.messaging.close()  # relays its last tracking events through the writer first
        self.privacy_scheduler.stop()
        self.connectors.close()
        self.writer.stop()
        self.processor.stop()
        try:
            self.processor.run_once()
        except Exception:
            log.exception("final processing pass failed; it resumes at the next start")
        self.processor.close()
        self.writer.close()
        self.db.checkpoint()
        self.keyring.close()
        self.access.close()
        self.db.close()

    def __enter__(self) -> Runtime:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
