"""Two-way CRM sync against live PostgreSQL and MariaDB: merges, rules, echo, concurrency, deletes."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import pytest

from tailor.collect.writer import Submission
from tailor.connectors.api import connector_status
from tailor.connectors.declarations import save_declaration
from tailor.connectors.state import Run
from tailor.datadir import init_data_dir
from tailor.runtime import Runtime
from tests.connectors.conftest import PG_ADMIN, my, pg

PG_TABLE = """CREATE TABLE contacts (
    id SERIAL PRIMARY KEY, email TEXT, first_name TEXT, city TEXT, score INT, vip BOOLEAN,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(), deleted_at TIMESTAMPTZ,
    tailor_profile_id TEXT UNIQUE, revision INT NOT NULL DEFAULT 0)"""
PG_TRIGGER = [
    """CREATE FUNCTION bump() RETURNS trigger AS $$
    BEGIN NEW.revision := OLD.revision + 1; RETURN NEW; END $$ LANGUAGE plpgsql""",
    "CREATE TRIGGER bump BEFORE UPDATE ON contacts FOR EACH ROW EXECUTE FUNCTION bump()",
]
MY_TABLE = """CREATE TABLE contacts (
    id INT AUTO_INCREMENT PRIMARY KEY, email VARCHAR(200), first_name VARCHAR(200), city VARCHAR(200),
    score INT, vip BOOLEAN, updated_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    deleted_at DATETIME(6) NULL, tailor_profile_id VARCHAR(64) UNIQUE, revision INT NOT NULL DEFAULT 0)"""
MY_TRIGGER = [
    "CREATE TRIGGER bump BEFORE UPDATE ON contacts FOR EACH ROW SET NEW.revision = OLD.revision + 1",
]
FIELDS = {
    "first_name": {"owner": "crm"},
    "city": {"owner": "tailor"},
    "score": {"type": "integer", "owner": "latest"},
    "vip": {"type": "boolean"},
}


@dataclass
class Crm:
    """A live CRM database with a `contacts` table, and how to run SQL on it."""

    url: str
    run_sql: Callable[[str, tuple[object, ...]], list[tuple[object, ...]]]
    clock: str
    kill: Callable[[], None]
    """Drops every connection of the sync (the database going away)."""

    def sql(self, text: str, *params: object) -> list[tuple[object, ...]]:
        return self.run_sql(text, params)

    def edit(self, contact_id: int, **values: object) -> None:
        sets = ", ".join(f"{k} = %s" for k in values)
        self.sql(
            f"UPDATE contacts SET {sets}, updated_at = {self.clock} WHERE id = %s",
            *values.values(),
            contact_id,
        )

    def row(self, contact_id: int) -> dict[str, object]:
        rows = self.sql(
            "SELECT email, first_name, city, score, vip, revision FROM contacts WHERE id = %s", contact_id
        )
        if not rows:
            return {}
        names = ("email", "first_name", "city", "score", "vip", "revision")
        out = dict(zip(names, rows[0], strict=True))
        out["vip"] = None if out["vip"] is None else bool(out["vip"])
        return out


@pytest.fixture(params=["postgres", "mariadb"])
def crm(request: pytest.FixtureRequest) -> Iterator[Crm]:
    if request.param == "postgres":
        url = request.getfixturevalue("pg_url")
        pg(url, PG_TABLE)
        for statement in PG_TRIGGER:
            pg(url, statement)
        db = url.rsplit("/", 1)[1]

        def kill_pg() -> None:
            pg(PG_ADMIN, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (db,))

        yield Crm(url, lambda s, p: pg(url, s, p), "clock_timestamp()", kill_pg)
    else:
        url = request.getfixturevalue("mysql_url")
        my(url, MY_TABLE)
        for statement in MY_TRIGGER:
            my(url, statement)
        db = url.rsplit("/", 1)[1]

        def kill_my() -> None:
            for (pid,) in my(url, "SELECT id FROM information_schema.processlist WHERE db = %s", (db,)):
                with contextlib.suppress(Exception):  # our own connection, or one that already ended
                    my(url, f"KILL {int(str(pid))}")

        yield Crm(url, lambda s, p: my(url, s, p), "CURRENT_TIMESTAMP(6)", kill_my)


@pytest.fixture
def rt(tmp_path: Path) -> Iterator[Runtime]:
    """A runtime whose writer runs and whose processor and connectors run only when a test says."""
    path = tmp_path / "data"
    init_data_dir(path)
    runtime = Runtime(path)
    runtime.writer.start()
    yield runtime
    runtime.close()


def declare(rt: Runtime, crm: Crm, **extra: object) -> None:
    spec = {
        "type": "crm_sync",
        "url": crm.url,
        "table": "contacts",
        "identifiers": {"email": "email"},
        "fields": FIELDS,
        "deleted_at": "deleted_at",
        **extra,
    }
    save_declaration(rt.data_dir, "crm", spec)


def cycle(rt: Runtime) -> dict[str, Any]:
    """One sync cycle, then a processing pass (so Tailor's side is up to date); the run's details."""
    run = rt.connectors.run("crm")
    rt.processor.run_once()
    return details(run)


def details(run: Run) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(run.details or "{}")
    out["status"] = run.status
    out["error"] = run.error
    return out


def tailor_change(rt: Runtime, email: str, **traits: object) -> None:
    """A trait change arriving in Tailor from another source (an identify of the web SDK)."""
    tailor_changes(rt, {email: traits})


def tailor_changes(rt: Runtime, people: dict[str, dict[str, object]]) -> None:
    """Trait changes of several people in one batch, then one processing pass."""
    messages = [
        msgspec.json.encode({"type": "identify", "userId": f"web-{e}", "traits": {"email": e, **t}})
        for e, t in people.items()
    ]
    now = datetime.now(UTC)
    rows, rejections = rt.validator.validate("web", messages, now)
    assert not rejections
    rt.writer.submit(Submission("web", "identify", now, rows, [])).result()
    rt.writer.flush()
    rt.processor.run_once()


def trait(rt: Runtime, email: str, name: str) -> object:
    pid = rt.identity_service.resolve(f"email:{email}")
    rows = rt.db.execute("SELECT value FROM profile_traits WHERE profile_id = ? AND trait = ?", [pid, name])
    return json.loads(rows[0][0]) if rows else None


def events(rt: Runtime) -> int:
    rt.writer.flush()
    return int(rt.db.execute("SELECT count(*) FROM events")[0][0])


def seed(crm: Crm) -> None:
    crm.sql(
        "INSERT INTO contacts (email, first_name, city, score, vip) VALUES"
        " ('ana@example.org', 'Ana', 'London', 10, TRUE), ('ben@example.org', 'Ben', 'Leeds', 20, FALSE)"
    )


def quiet(rt: Runtime, crm: Crm) -> None:
    """Two cycles in a row that write nothing anywhere (no echo)."""
    before_events, before_rows = events(rt), [crm.row(1), crm.row(2)]
    for _ in range(2):
        d = cycle(rt)
        assert (d["written_to_crm"], d["written_to_tailor"], d["deferred"]) == (0, 0, 0), d
    assert events(rt) == before_events
    assert [crm.row(1), crm.row(2)] == before_rows


def test_each_side_changing_alone_reaches_the_other_without_echo(rt: Runtime, crm: Crm) -> None:
    seed(crm)
    declare(rt, crm)
    first = cycle(rt)
    assert (first["contacts_read"], first["written_to_tailor"], first["written_to_crm"]) == (2, 2, 0)
    assert trait(rt, "ana@example.org", "city") == "London"
    assert trait(rt, "ben@example.org", "vip") is False
    quiet(rt, crm)

    crm.edit(1, city="Bristol", score=11)  # the CRM changed, Tailor did not
    d = cycle(rt)
    assert (d["written_to_tailor"], d["fields_to_tailor"], d["written_to_crm"], d["conflicts"]) == (
        1,
        2,
        0,
        0,
    )
    assert (trait(rt, "ana@example.org", "city"), trait(rt, "ana@example.org", "score")) == ("Bristol", 11)
    quiet(rt, crm)

    tailor_change(rt, "ben@example.org", city="York", vip=True)  # Tailor changed, the CRM did not
    d = cycle(rt)
    assert (d["written_to_crm"], d["fields_to_crm"], d["written_to_tailor"], d["conflicts"]) == (1, 2, 0, 0)
    assert crm.row(2) | {"revision": 0} == {
        "email": "ben@example.org",
        "first_name": "Ben",
        "city": "York",
        "score": 20,
        "vip": True,
        "revision": 0,
    }
    assert crm.row(2)["revision"] == 1  # written once
    quiet(rt, crm)

    runs = rt.connectors.state.runs("crm", 50)
    assert all(r.status == "ok" for r in runs)
    status = connector_status(rt.connectors.state, rt.connectors.declarations(), {})[0]
    assert (status["sync"]["written_to_crm"], status["sync"]["contacts_read"]) == (0, 2)


@pytest.mark.parametrize("crm", ["postgres"], indirect=True)  # engine-independent: one engine is enough
def test_both_sides_changed_each_rule_decides(rt: Runtime, crm: Crm) -> None:
    seed(crm)
    declare(rt, crm)
    cycle(rt)
    crm.edit(1, first_name="Anna", city="Bath", score=12)
    # Tailor's changes come later than the CRM's: `latest` gives the score to Tailor.
    tailor_change(rt, "ana@example.org", first_name="Annie", city="Derby", score=99)
    d = cycle(rt)
    assert d["conflicts"] == 3, d
    assert trait(rt, "ana@example.org", "first_name") == "Anna"  # owner crm
    row = crm.row(1)
    assert (row["first_name"], row["city"], row["score"]) == ("Anna", "Derby", 99)  # owner tailor, latest
    quiet(rt, crm)
    # Now the CRM changes last: `latest` gives the score to the CRM.
    tailor_change(rt, "ana@example.org", score=5)
    crm.edit(1, score=6)
    d = cycle(rt)
    assert d["conflicts"] == 1
    assert (trait(rt, "ana@example.org", "score"), crm.row(1)["score"]) == (6, 6)
    # Both changed to the same value: no conflict, nothing written.
    tailor_change(rt, "ana@example.org", city="Hull")
    crm.edit(1, city="Hull")
    d = cycle(rt)
    assert (d["conflicts"], d["written_to_crm"], d["written_to_tailor"]) == (0, 0, 0)
    quiet(rt, crm)
    # A Tailor value that is not of the column's type is a failure named with its contact; others go on.
    tailor_changes(rt, {"ana@example.org": {"score": "lots"}, "ben@example.org": {"city": "Kent"}})
    run = rt.connectors.run("crm")
    d = details(run)
    assert (run.status, d["failed"], d["written_to_crm"]) == ("partial", 1, 1), d
    assert "contact 1: trait 'score': 'lots' is not a number" in d["errors"][0]
    assert (crm.row(1)["score"], crm.row(2)["city"]) == (6, "Kent")


def test_concurrent_edits_during_a_cycle_are_merged_next_cycle(rt: Runtime, crm: Crm) -> None:
    seed(crm)
    declare(rt, crm)
    cycle(rt)
    tailor_changes(rt, {"ana@example.org": {"score": 50}, "ben@example.org": {"city": "Ely"}})

    def meanwhile(point: str) -> None:
        if point == "imported":
            crm.edit(1, score=60, first_name="Ann")  # a CRM user saves ana after the cycle read her
            tailor_change(rt, "ben@example.org", score=77)  # and Tailor learns something new of ben

    rt.connectors.crm_hook = meanwhile
    d = cycle(rt)
    rt.connectors.crm_hook = None
    assert (d["deferred"], d["written_to_crm"]) == (1, 1), d  # ana's write found her changed; ben's went
    assert (crm.row(1)["score"], crm.row(2)["city"]) == (60, "Ely")
    d = cycle(rt)
    # ana: both changed the score -> `latest` (the CRM's edit came later); ben: Tailor's new score.
    assert (d["conflicts"], d["written_to_tailor"], d["written_to_crm"]) == (1, 1, 1), d
    assert (trait(rt, "ana@example.org", "score"), trait(rt, "ana@example.org", "first_name")) == (60, "Ann")
    assert crm.row(2)["score"] == 77
    quiet(rt, crm)


def test_deletes_unlink_and_erasure_deletes_the_contact(rt: Runtime, crm: Crm) -> None:
    seed(crm)
    crm.sql("INSERT INTO contacts (email, first_name) VALUES ('cy@example.org', 'Cy')")
    declare(rt, crm, on_erasure="delete")
    cycle(rt)
    tailor_change(rt, "ana@example.org", city="Wells")
    ana = rt.identity_service.resolve("email:ana@example.org")
    assert rt.identity_service.resolve("record:crm:1") == ana
    crm.edit(1, deleted_at=datetime(2026, 11, 30, tzinfo=UTC))  # soft delete
    crm.sql("DELETE FROM contacts WHERE id = 2")  # hard delete: gone from the key scan
    d = cycle(rt)
    assert (d["unlinked"], d["written_to_crm"]) == (2, 0), d  # a deleted contact is not written to
    assert rt.identity_service.resolve("record:crm:1") != rt.identity_service.resolve("email:ana@example.org")
    assert crm.row(1)["city"] == "London"
    quiet_d = cycle(rt)
    assert quiet_d["unlinked"] == 0

    result = rt.privacy.erase("email:cy@example.org", compact_now=False)
    assert result.identifiers >= 2
    d = cycle(rt)
    assert d["erased"] == 1
    assert crm.sql("SELECT count(*) FROM contacts WHERE email = 'cy@example.org'")[0][0] == 0
    assert cycle(rt)["written_to_tailor"] == 0


def test_an_erased_person_kept_in_the_crm_is_never_read_back(rt: Runtime, crm: Crm) -> None:
    seed(crm)
    declare(rt, crm)  # on_erasure = "keep"
    cycle(rt)
    rt.privacy.erase("email:ben@example.org", compact_now=False)
    crm.edit(2, city="Ripon")  # the CRM keeps ben, and even edits him
    d = cycle(rt)
    assert (d["erased"], d["written_to_tailor"], d["written_to_crm"]) == (0, 0, 0), d
    assert crm.row(2)["city"] == "Ripon"
    rows = rt.db.execute("SELECT count(*) FROM events WHERE traits LIKE '%ben@example.org%'")
    assert rows[0][0] == 0


def test_new_profiles_are_inserted_once(rt: Runtime, crm: Crm) -> None:
    seed(crm)
    declare(rt, crm, insert_new=True, profile_column="tailor_profile_id")
    tailor_change(rt, "ana@example.org", first_name="Ana")  # ana has a web profile and a contact
    first = cycle(rt)
    # Her contact is imported but not linked yet: inserting her profile now would double her.
    assert (first["inserted"], first["inserts_deferred"]) == (0, True)
    tailor_change(rt, "dee@example.org", first_name="Dee", score=3)
    d = cycle(rt)
    assert d["inserted"] == 1
    rows = crm.sql(
        "SELECT id, first_name, score, tailor_profile_id FROM contacts WHERE email = 'dee@example.org'"
    )
    assert [r[1:3] for r in rows] == [("Dee", 3)]
    assert rows[0][3] == rt.identity_service.resolve("email:dee@example.org")
    d = cycle(rt)  # the new contact is read back and linked to the profile, not inserted again
    assert (d["inserted"], d["written_to_crm"]) == (0, 0)
    assert rt.identity_service.resolve(f"record:crm:{rows[0][0]}") == rows[0][3]
    assert crm.sql("SELECT count(*) FROM contacts")[0][0] == 3


def test_a_crash_between_a_write_and_its_base_neither_loses_nor_doubles(rt: Runtime, crm: Crm) -> None:
    seed(crm)
    declare(rt, crm)
    cycle(rt)
    for n, point in enumerate(["durable", "written"], start=1):
        city = f"Truro{n}"
        crm.edit(1, city=city)
        tailor_change(rt, "ben@example.org", city=f"Rye{n}")

        def crash(at: str, point: str = point) -> None:
            if at == point:
                raise RuntimeError("the process died here")

        rt.connectors.crm_hook = crash
        failed = cycle(rt)
        rt.connectors.crm_hook = None
        assert failed["status"] == "failed"
        stored = events(rt)
        d = cycle(rt)
        assert (trait(rt, "ana@example.org", "city"), crm.row(2)["city"]) == (city, f"Rye{n}")
        assert crm.row(2)["revision"] == n  # the CRM was written once each time
        assert d["written_to_crm"] == (1 if point == "durable" else 0)  # "written": the commit had landed
        assert events(rt) == stored  # the import, if repeated, stored nothing twice
        quiet(rt, crm)


def test_a_database_that_goes_away_mid_sync_resumes(rt: Runtime, crm: Crm) -> None:
    for i in range(1, 8):
        crm.sql("INSERT INTO contacts (email, city) VALUES (%s, 'A')", f"p{i}@example.org")
    declare(rt, crm, batch_rows=3)
    cycle(rt)
    tailor_changes(rt, {f"p{i}@example.org": {"city": f"T{i}"} for i in range(1, 8)})
    writes = 0

    def outage(at: str) -> None:
        nonlocal writes
        if at == "written":
            writes += 1
            if writes == 4:
                crm.kill()

    rt.connectors.crm_hook = outage
    failed = cycle(rt)
    rt.connectors.crm_hook = None
    assert (failed["status"], failed["transient"]) == ("failed", True), failed
    assert 4 <= failed["written_to_crm"] < 7
    d = cycle(rt)
    assert failed["written_to_crm"] + d["written_to_crm"] == 7
    cities = [r[0] for r in crm.sql("SELECT city FROM contacts ORDER BY id")]
    assert cities == [f"T{i}" for i in range(1, 8)]
    assert [r[0] for r in crm.sql("SELECT revision FROM contacts ORDER BY id")] == [1] * 7
    quiet_all = cycle(rt)
    assert quiet_all["written_to_crm"] == quiet_all["written_to_tailor"] == 0


def test_the_scheduler_runs_a_crm_sync_and_status_shows_its_counts(tmp_path: Path, pg_url: str) -> None:
    from click.testing import CliRunner

    from tailor.cli import main

    pg(pg_url, PG_TABLE)
    crm = Crm(pg_url, lambda s, p: pg(pg_url, s, p), "clock_timestamp()", lambda: None)
    seed(crm)
    path = tmp_path / "data"
    init_data_dir(path)
    runtime = Runtime(path)
    declare(runtime, crm, interval_s=0.5)
    cycles = threading.Event()
    runtime.connectors.crm_hook = lambda point: cycles.set() if point == "durable" else None
    runtime.start()
    try:
        assert cycles.wait(20), "the scheduler did not run the CRM sync"
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            last = runtime.connectors.state.runs("crm", 1)
            if last and last[0].status == "ok" and last[0].rows_written == 2:
                break
            time.sleep(0.1)
    finally:
        runtime.close()
    text = CliRunner().invoke(main, ["connectors", "status", "--data", str(path)])
    assert text.exit_code == 0, text.output
    assert "2 contacts read, 0 written to the CRM, 2 to Tailor, 0 conflicts" in " ".join(text.output.split())
    as_json = CliRunner().invoke(main, ["connectors", "status", "--data", str(path), "--json"])
    (row,) = json.loads(as_json.output)
    assert row["sync"] == {
        "contacts_read": 2,
        "written_to_crm": 0,
        "written_to_tailor": 2,
        "conflicts": 0,
        "deferred": 0,
        "failed": 0,
    }


def test_a_declaration_that_cannot_work_names_each_problem(rt: Runtime) -> None:
    from tailor.connectors.exceptions import ConnectorError

    spec = {
        "type": "crm_sync",
        "url": "postgresql://x/y",
        "table": "contacts",
        "fields": {"city": {"owner": "nobody"}},
    }
    with pytest.raises(ConnectorError, match="owner"):
        save_declaration(rt.data_dir, "crm", spec)
    spec["fields"] = {"birth_date": {}, "updated_at": {}}
    spec["insert_new"] = True
    with pytest.raises(ConnectorError) as e:
        save_declaration(rt.data_dir, "crm", spec)
    message = str(e.value)
    assert "fields.birth_date.trait: 'birth_date' is spelled 'birthday' in Tailor" in message
    assert "fields.updated_at: already used" in message
    assert "profile_column: insert_new needs a unique column" in message
    assert "insert_when: no identifier column of type 'email'" in message
