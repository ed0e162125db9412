"""Creating and opening a Tailor data directory."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tailor.config import CONFIG_FILE, TailorConfig, dump_config
from tailor.exceptions import DataDirError
from tailor.keyring import KEYRING_FILE, Keyring
from tailor.store.database import open_database


@dataclass(frozen=True)
class Credentials:
    """The secrets a new data directory is created with; shown once, stored only as hashes."""

    source_id: str
    write_key: str
    admin_token: str


def init_data_dir(
    path: Path, source_name: str = "default", config: TailorConfig | None = None
) -> Credentials:
    """Creates a data directory with its configuration, database, a default source and an admin token."""
    if (path / CONFIG_FILE).exists() or (path / KEYRING_FILE).exists():
        raise DataDirError(f"{path} is already a Tailor data directory")
    path.mkdir(parents=True, exist_ok=True)
    (path / CONFIG_FILE).write_text(dump_config(config or TailorConfig()), "utf-8")
    open_database(path).close()
    keyring = Keyring(path / KEYRING_FILE)
    try:
        source_id, write_key = keyring.add_source(source_name)
        admin_token = keyring.add_admin_token("admin")
    finally:
        keyring.close()
    return Credentials(source_id, write_key, admin_token)


def require_data_dir(path: Path) -> Path:
    """Checks that a path is an initialised data directory."""
    if not (path / KEYRING_FILE).exists():
        raise DataDirError(f"{path} is not a Tailor data directory; create one with `tailor init {path}`")
    return path
