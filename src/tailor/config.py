"""Tailor's configuration: one typed object loaded from the data directory's TOML file and the environment."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

import msgspec

from tailor.access.config import AccessConfig
from tailor.analytics.settings import AnalyticsConfig
from tailor.channels.config import ChannelsConfig
from tailor.exceptions import ConfigError
from tailor.identity.components import DEFAULT_LIMITS
from tailor.identity.rules import NormalisationRules
from tailor.journeys.config import JourneysConfig
from tailor.privacy.config import PrivacyConfig
from tailor.profiles.config import ProfilesConfig

CONFIG_FILE = "tailor.toml"
ENV_PREFIX = "TAILOR_"


class ServerConfig(msgspec.Struct, forbid_unknown_fields=True):
    """Where `tailor serve` listens."""

    host: str = "127.0.0.1"
    """Interface to bind."""
    port: int = 8080
    """TCP port to bind."""


class CollectConfig(msgspec.Struct, forbid_unknown_fields=True):
    """Limits and batching of the collection API."""

    max_request_bytes: int = 4 * 1024 * 1024
    """Largest request body accepted, measured after gzip decompression."""
    max_event_bytes: int = 32 * 1024
    """Largest single event accepted, as JSON bytes."""
    max_pending_events: int = 200_000
    """Events waiting for the writer beyond which requests get 503 with Retry-After."""
    max_commit_events: int = 50_000
    """Most events written in one group commit."""
    max_unloaded_events: int = 500_000
    """Acknowledged events waiting to be loaded into DuckDB beyond which requests get 503."""
    load_events: int = 122_880
    """Staged events that start a load into DuckDB (one DuckDB row group is written directly)."""
    load_delay_ms: int = 500
    """Longest an acknowledged event waits in the staging log before a smaller load starts.

    The running processor also loads what is staged whenever it starts a batch, so in `tailor
    serve` an event waits for the batch in progress, not for this delay; the delay bounds the wait
    for other readers of the log. Measured with bench/ingest.py: 500 ms kept /v1/track's p99 at
    15.6-17.7 ms where 2,000 ms gave 26-29 ms (a larger load stalls the request path longer), at
    no measurable cost to batch ingest."""
    staging_segment_mb: int = 64
    """Size at which the staging log starts a new segment file (loaded segments are deleted)."""


class StoreConfig(msgspec.Struct, forbid_unknown_fields=True):
    """The embedded DuckDB store."""

    checkpoint_threshold_mb: int = 64
    """WAL size at which DuckDB folds the WAL into the database file; commits wait meanwhile."""
    compression: str = "auto"
    """DuckDB compression forced at checkpoints on every table ("auto": the event log's text in zstd,
    as its columns declare, and DuckDB's choice per column segment elsewhere; "zstd" forces it on
    everything, as stores created before 2026-12-03 do, at 2-3x slower profile reads)."""


class ProcessorConfig(msgspec.Struct, forbid_unknown_fields=True):
    """The processing loop that carries committed events through the stages."""

    interval_ms: int = 500
    """Pause between two polls of the event log; longer pauses make larger, cheaper micro-batches."""
    max_batch_events: int = 200_000
    """Most events in one micro-batch."""
    load_acknowledged: bool = True
    """Whether each batch of the running loop first loads every acknowledged event (an event waits
    for the batch in progress only: event -> segment entered p95 1,102 -> 723 ms with the other
    changes of that session, bench/segment_latency.py), or reads only what the loader's
    `load_delay_ms` brought in (fewer, larger loads)."""
    nice: int = 5
    """CPU priority (Linux nice, 0-19) of the processor's thread and DuckDB's worker threads in a
    running server, below collection's (`tailor.process.priority`). Measured under a saturating
    load: 5 took collection from 60-63k to 66-70k events/s with as many events processed meanwhile;
    10 gave 69-72k but processed less than half as many; 0 runs them at collection's priority."""

    def __post_init__(self) -> None:
        if not 0 <= self.nice <= 19:
            raise ValueError(f"processor.nice must be from 0 to 19, got {self.nice}")


class IdentityConfig(msgspec.Struct, forbid_unknown_fields=True):
    """Identity resolution: how identifiers are cleaned and how many of a type one profile may hold."""

    limits: dict[str, int] = msgspec.field(default_factory=lambda: dict(DEFAULT_LIMITS))
    """Most values of an identifier type one profile holds; later values are detached (one user_id always)."""
    normalisation: NormalisationRules = msgspec.field(default_factory=NormalisationRules)
    """Normalisation rules: phone region, email plus-addressing, blocked values and patterns, custom types."""

    def __post_init__(self) -> None:
        bad = [f"{t} = {n}" for t, n in self.limits.items() if n < 1]
        if bad:
            raise ValueError(f"identity.limits must be at least 1: {', '.join(bad)}")


class TailorConfig(msgspec.Struct, forbid_unknown_fields=True):
    """Everything configurable about one Tailor data directory."""

    server: ServerConfig = msgspec.field(default_factory=ServerConfig)
    """HTTP server settings."""
    collect: CollectConfig = msgspec.field(default_factory=CollectConfig)
    """Collection API limits."""
    processor: ProcessorConfig = msgspec.field(default_factory=ProcessorConfig)
    """Processing loop settings."""
    store: StoreConfig = msgspec.field(default_factory=StoreConfig)
    """Storage settings."""
    identity: IdentityConfig = msgspec.field(default_factory=IdentityConfig)
    """Identity resolution settings."""
    profiles: ProfilesConfig = msgspec.field(default_factory=ProfilesConfig)
    """Golden record survivorship and the evaluation of computed traits and segments."""
    analytics: AnalyticsConfig = msgspec.field(default_factory=AnalyticsConfig)
    """Journey analytics: lookback window, half-lives, sessions, the conversion event, currency."""
    privacy: PrivacyConfig = msgspec.field(default_factory=PrivacyConfig)
    """Consent purposes, collection policies per source, retention."""
    access: AccessConfig = msgspec.field(default_factory=AccessConfig)
    """Rate limits and console sessions."""
    channels: ChannelsConfig = msgspec.field(default_factory=ChannelsConfig)
    """Messaging: outbox dispatcher, email, SMS, webhooks, tracking and send-time rules."""
    journeys: JourneysConfig = msgspec.field(default_factory=JourneysConfig)
    """The journey runner: polling, chunk sizes and the global control group."""


def _env_overrides(environ: dict[str, str]) -> dict[str, Any]:
    """Turns TAILOR_SECTION__FIELD=value variables into a nested mapping of TOML-typed values."""
    tree: dict[str, Any] = {}
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX) or "__" not in name:
            continue
        section, _, field = name[len(ENV_PREFIX) :].lower().partition("__")
        try:
            value: Any = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw  # a bare word is meant as a string
        tree.setdefault(section, {})[field] = value
    return tree


def load_config(data_dir: Path, environ: dict[str, str] | None = None) -> TailorConfig:
    """Reads `tailor.toml` from the data directory, then applies TAILOR_SECTION__FIELD variables."""
    path = data_dir / CONFIG_FILE
    tree: dict[str, Any] = {}
    if path.exists():
        try:
            tree = tomllib.loads(path.read_text("utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
            raise ConfigError(f"{path}: {e}") from e
    for section, fields in _env_overrides(dict(os.environ if environ is None else environ)).items():
        tree.setdefault(section, {}).update(fields)
    try:
        return msgspec.convert(tree, TailorConfig)
    except msgspec.ValidationError as e:
        raise ConfigError(f"{path}: {e}") from e


def dump_config(config: TailorConfig) -> str:
    """Renders a configuration as TOML text."""
    import tomli_w

    return tomli_w.dumps(msgspec.to_builtins(config))
