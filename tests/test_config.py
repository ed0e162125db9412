"""Configuration from TOML and environment variables."""

from __future__ import annotations

from pathlib import Path

import pytest

from tailor.config import TailorConfig, dump_config, load_config
from tailor.exceptions import ConfigError


def test_defaults_round_trip_through_toml(tmp_path: Path) -> None:
    (tmp_path / "tailor.toml").write_text(dump_config(TailorConfig()))
    assert load_config(tmp_path, {}) == TailorConfig()


def test_environment_overrides_file(tmp_path: Path) -> None:
    (tmp_path / "tailor.toml").write_text("[server]\nport = 9000\nhost = '0.0.0.0'\n")
    config = load_config(tmp_path, {"TAILOR_SERVER__PORT": "9100", "TAILOR_COLLECT__MAX_EVENT_BYTES": "1000"})
    assert config.server.port == 9100
    assert config.server.host == "0.0.0.0"
    assert config.collect.max_event_bytes == 1000


@pytest.mark.parametrize(
    ("text", "env", "fragment"),
    [
        ("[server]\nport = 'high'\n", {}, "server.port"),
        ("[server]\nprot = 1\n", {}, "prot"),
        ("[server\n", {}, "tailor.toml"),
        ("", {"TAILOR_PROCESSOR__INTERVAL_MS": "soon"}, "processor.interval_ms"),
    ],
)
def test_bad_configuration_names_the_field(
    tmp_path: Path, text: str, env: dict[str, str], fragment: str
) -> None:
    (tmp_path / "tailor.toml").write_text(text)
    with pytest.raises(ConfigError, match=fragment.replace(".", r"\.")):
        load_config(tmp_path, env)


def test_a_compression_duckdb_does_not_know_is_a_config_error(tmp_path: Path) -> None:
    from tailor.store.database import open_database

    with pytest.raises(ConfigError, match=r"\[store\] settings rejected"):
        open_database(tmp_path, compression="squeeze")
