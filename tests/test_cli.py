"""The command line: init, sources and keys."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from tailor.cli import main
from tailor.keyring import KEYRING_FILE, KeyCache, Keyring


def test_init_json_prints_only_the_secrets(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "tailor.cli", "init", str(tmp_path / "d"), "--json"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    creds = json.loads(out)
    assert set(creds) == {"write_key", "admin_token"}
    keyring = Keyring(tmp_path / "d" / KEYRING_FILE)
    cache = KeyCache(keyring)
    assert cache.source_for(creds["write_key"]) is not None
    assert cache.is_admin(creds["admin_token"])
    stored = (tmp_path / "d" / KEYRING_FILE).read_bytes()
    assert creds["write_key"].encode() not in stored
    assert creds["admin_token"].encode() not in stored


def test_init_refuses_an_existing_directory(tmp_path: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(main, ["init", str(tmp_path)]).exit_code == 0
    result = runner.invoke(main, ["init", str(tmp_path)])
    assert result.exit_code == 1
    assert "already a Tailor data directory" in result.output


def test_commands_on_a_missing_data_dir_say_so(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["sources", "list", "--data", str(tmp_path / "nope")])
    assert result.exit_code == 1
    assert "not a Tailor data directory" in result.output


def test_sources_add_rotate_and_revoke(tmp_path: Path) -> None:
    runner = CliRunner()
    runner.invoke(main, ["init", str(tmp_path)])
    added = json.loads(runner.invoke(main, ["sources", "add", "crm", "--data", str(tmp_path)]).output)
    cache = KeyCache(Keyring(tmp_path / KEYRING_FILE))
    assert cache.source_for(added["write_key"]) == added["source_id"]
    assert runner.invoke(main, ["sources", "add", "crm", "--data", str(tmp_path)]).exit_code == 1

    rotated = json.loads(runner.invoke(main, ["sources", "rotate", "crm", "--data", str(tmp_path)]).output)
    cache.refresh()
    assert cache.source_for(rotated["write_key"]) == added["source_id"]
    assert cache.source_for(added["write_key"]) == added["source_id"]  # within the grace period

    revoked = json.loads(
        runner.invoke(main, ["sources", "rotate", "crm", "--grace", "0", "--data", str(tmp_path)]).output
    )
    time.sleep(0.01)
    cache.refresh()
    assert cache.source_for(added["write_key"]) is None
    assert cache.source_for(rotated["write_key"]) is None
    assert cache.source_for(revoked["write_key"]) == added["source_id"]
    listing = runner.invoke(main, ["sources", "list", "--data", str(tmp_path)]).output
    assert "crm" in listing
    assert "default" in listing


@pytest.mark.parametrize("name", ["missing"])
def test_rotating_an_unknown_source_fails_clearly(tmp_path: Path, name: str) -> None:
    runner = CliRunner()
    runner.invoke(main, ["init", str(tmp_path)])
    result = runner.invoke(main, ["sources", "rotate", name, "--data", str(tmp_path)])
    assert result.exit_code == 1
    assert f"no source named '{name}'" in result.output


def test_import_tailor_stays_light() -> None:
    heavy = "('duckdb', 'pyarrow', 'starlette', 'numpy')"
    code = f"import sys, tailor; print(sorted(m for m in {heavy} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert out.strip() == "[]"
