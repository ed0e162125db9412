"""Destinations: only changes are sent, outages are waited out, dead letters kept, nothing sent twice."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest

from tailor.connectors.declarations import save_declaration
from tailor.connectors.destinations.audiences import profile_identifiers
from tailor.runtime import Runtime
from tests.connectors.conftest import PG_ADMIN, my, pg
from tests.connectors.receiver import SECRET, Receiver

QUERY = "SELECT * FROM test_audience"


def _audience(rt: Runtime, n: int) -> None:
    rt.db.execute("CREATE OR REPLACE TABLE test_audience (id VARCHAR, email VARCHAR, score INTEGER)")
    rt.db.execute(
        f"INSERT INTO test_audience SELECT 'p' || i, 'p' || i || '@example.org', i FROM range({n}) t(i)"
    )


def _webhook(rt: Runtime, r: Receiver, **extra: object) -> None:
    spec = {"type": "webhook_destination", "url": r.url, "secret": SECRET, "query": QUERY, "key": "id"}
    save_declaration(rt.data_dir, "hook", {**spec, "batch_rows": 100, "retry_backoff_s": 0, **extra})


def test_webhook_sends_only_changes_signed_and_batched(runtime: Runtime, receiver: Receiver) -> None:
    _audience(runtime, 250)
    _webhook(runtime, receiver)
    first = runtime.connectors.run("hook")
    assert (first.status, first.rows_read, first.rows_written) == ("ok", 250, 250)
    assert len(receiver.applied) == 3
    assert {r["key"] for r in receiver.rows()} == {f"p{i}" for i in range(250)}
    assert runtime.connectors.run("hook").rows_written == 0  # nothing changed: nothing sent
    runtime.db.execute("UPDATE test_audience SET score = -1 WHERE id IN ('p1', 'p2')")
    runtime.db.execute("DELETE FROM test_audience WHERE id = 'p3'")
    third = runtime.connectors.run("hook")
    assert (third.rows_read, third.rows_written, third.rows_skipped) == (249, 3, 247)
    last = list(receiver.applied.values())[-1]["rows"]
    assert [(r["key"], r["op"]) for r in last] == [("p1", "upsert"), ("p2", "upsert"), ("p3", "delete")]
    assert last[0]["data"] == {"id": "p1", "email": "p1@example.org", "score": -1}


def test_an_outage_is_waited_out_and_nothing_is_lost_or_sent_twice(
    runtime: Runtime, receiver: Receiver
) -> None:
    _audience(runtime, 300)
    _webhook(runtime, receiver)
    receiver.fail_with = 500
    down = runtime.connectors.run("hook")
    assert down.status == "failed"
    assert "HTTP 500" in (down.error or "")
    assert down.rows_written == 0
    runtime.db.execute("UPDATE test_audience SET score = 1000 WHERE id = 'p5'")  # changes while it is down
    assert runtime.connectors.run("hook").status == "failed"
    receiver.fail_with = None
    back = runtime.connectors.run("hook")
    assert back.status == "ok", back.error
    keys = Counter(r["key"] for r in receiver.rows())
    assert len(keys) == 300
    # p5 went out twice on purpose: its first version was planned before it changed, then its change.
    assert {k for k, n in keys.items() if n > 1} == {"p5"}
    assert [r["data"]["score"] for r in receiver.rows() if r["key"] == "p5"] == [5, 1000]
    assert len({req["key"] for req in receiver.requests}) == 4  # 3 batches + the change, however many retries


def test_a_refused_batch_is_dead_lettered_and_can_be_replayed(runtime: Runtime, receiver: Receiver) -> None:
    _audience(runtime, 50)
    _webhook(runtime, receiver, batch_rows=20)
    receiver.fail_with = 422
    refused = runtime.connectors.run("hook")
    assert refused.status == "partial"
    assert refused.rows_failed == 50
    assert "HTTP 422" in (refused.error or "")
    receiver.fail_with = None
    assert runtime.connectors.run("hook").rows_written == 0  # dead rows are not planned again unchanged
    assert runtime.connectors.outbox.summary("hook")["dead"] == 3
    assert runtime.connectors.outbox.requeue_dead("hook") == 3
    replayed = runtime.connectors.run("hook")
    assert replayed.rows_written == 50
    assert len(receiver.rows()) == 50


def test_repeated_failures_dead_letter_after_max_attempts(runtime: Runtime, receiver: Receiver) -> None:
    _audience(runtime, 10)
    _webhook(runtime, receiver, max_attempts=2)
    receiver.fail_with = 503
    runtime.connectors.run("hook")
    second = runtime.connectors.run("hook")
    assert second.rows_failed == 10
    assert runtime.connectors.outbox.summary("hook").get("dead") == 1


def test_a_crash_after_delivery_sends_nothing_twice(
    runtime: Runtime, receiver: Receiver, pg_url: str
) -> None:
    _audience(runtime, 30)
    _webhook(runtime, receiver, batch_rows=10)
    spec = {"type": "sql_destination", "url": pg_url, "table": "audience", "query": QUERY, "key": "id"}
    save_declaration(runtime.data_dir, "pgdest", {**spec, "batch_rows": 10, "retry_backoff_s": 0})
    # Count every write the table receives: applying a batch twice would show.
    pg(pg_url, "CREATE TABLE writes (n INT)")
    pg(pg_url, "CREATE TABLE audience (id VARCHAR(255) PRIMARY KEY, email TEXT, score BIGINT)")
    pg(
        pg_url,
        "CREATE FUNCTION count_write() RETURNS trigger AS $$"
        " BEGIN INSERT INTO writes VALUES (1); RETURN NEW; END $$"
        " LANGUAGE plpgsql",
    )
    pg(
        pg_url,
        "CREATE TRIGGER w BEFORE INSERT OR UPDATE ON audience FOR EACH ROW EXECUTE FUNCTION count_write()",
    )

    def crash(batch_id: str) -> None:
        if batch_id.endswith("-000001"):
            raise RuntimeError("killed between delivery and record")

    runtime.connectors.after_send = crash
    for name in ("hook", "pgdest"):
        assert runtime.connectors.run(name).status == "failed"
    runtime.connectors.after_send = None
    for name in ("hook", "pgdest"):
        assert runtime.connectors.run(name).status == "ok"
    assert Counter(r["key"] for r in receiver.rows()) == Counter(f"p{i}" for i in range(30))
    assert len(receiver.requests) == 4  # the second batch reached it twice, with one Idempotency-Key
    assert pg(pg_url, "SELECT count(*) FROM writes") == [(30,)]
    assert pg(pg_url, "SELECT count(*), sum(score) FROM audience") == [(30, sum(range(30)))]


def test_postgres_destination_survives_terminated_connections(runtime: Runtime, pg_url: str) -> None:
    _audience(runtime, 100)
    spec = {"type": "sql_destination", "url": pg_url, "table": "public.audience", "query": QUERY, "key": "id"}
    save_declaration(runtime.data_dir, "pgdest", {**spec, "batch_rows": 25, "retry_backoff_s": 0})
    database = pg_url.rsplit("/", 1)[1]

    def terminate(batch_id: str) -> None:
        if batch_id.endswith("-000001"):
            pg(
                PG_ADMIN,
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (database,),
            )

    runtime.connectors.after_send = terminate
    # The lost connection is noticed at the next batch, which is retried on a new connection.
    assert runtime.connectors.run("pgdest").status == "ok"
    runtime.connectors.after_send = None
    runtime.db.execute("DELETE FROM test_audience WHERE score >= 90")
    runtime.db.execute("UPDATE test_audience SET email = 'new@example.org' WHERE id = 'p0'")
    assert runtime.connectors.run("pgdest").rows_written == 11
    assert pg(pg_url, "SELECT count(*) FROM audience") == [(90,)]
    assert pg(pg_url, "SELECT email FROM audience WHERE id = 'p0'") == [("new@example.org",)]


def test_mariadb_destination_upserts(runtime: Runtime, mysql_url: str) -> None:
    _audience(runtime, 40)
    spec = {"type": "sql_destination", "url": mysql_url, "table": "audience", "query": QUERY, "key": "id"}
    save_declaration(runtime.data_dir, "mydest", {**spec, "batch_rows": 15})
    assert runtime.connectors.run("mydest").rows_written == 40
    runtime.db.execute("UPDATE test_audience SET score = score * 10")
    assert runtime.connectors.run("mydest").rows_written == 39  # p0's score stays 0
    assert my(mysql_url, "SELECT count(*), sum(score) FROM audience") == [(40, sum(range(40)) * 10)]


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_file_destination_writes_one_file_per_batch_of_changes(
    runtime: Runtime, tmp_path: Path, fmt: str
) -> None:
    _audience(runtime, 30)
    spec = {
        "type": "file_destination",
        "path": str(tmp_path / "out"),
        "format": fmt,
        "query": QUERY,
        "key": "id",
    }
    save_declaration(runtime.data_dir, "files", {**spec, "batch_rows": 20})
    runtime.connectors.run("files")
    runtime.db.execute("DELETE FROM test_audience WHERE id = 'p7'")
    runtime.connectors.run("files")
    files = sorted((tmp_path / "out").iterdir())
    assert [f.suffix for f in files] == [f".{fmt}"] * 3
    read = pcsv.read_csv if fmt == "csv" else pq.read_table
    tables = [read(f) for f in files]
    assert sum(t.num_rows for t in tables) == 31
    assert tables[-1].to_pylist()[0]["_op"] == "delete"
    assert tables[-1].to_pylist()[0]["_key"] == "p7"


def test_profile_identifiers_audience(runtime: Runtime, tmp_path: Path, receiver: Receiver) -> None:
    path = tmp_path / "crm.csv"
    path.write_text("crm_id,email\nC1,ana@example.org\nC2,ben@example.org\n", encoding="utf-8")
    from tailor.connectors.records import import_records

    import_records(runtime.db, runtime.writer, "crm", path, "crm_id")
    runtime.processor.run_once()
    spec = {"type": "webhook_destination", "url": receiver.url, "secret": SECRET, "key": "profile_id"}
    save_declaration(runtime.data_dir, "people", {**spec, "query": profile_identifiers(["email", "crm_id"])})
    assert runtime.connectors.run("people").rows_written == 2
    emails = sorted(r["data"]["email"] for r in receiver.rows())
    assert emails == ["ana@example.org", "ben@example.org"]
    assert all(r["data"]["crm_id"] in ("C1", "C2") for r in receiver.rows())


def test_profile_traits_audience(runtime: Runtime, tmp_path: Path) -> None:
    from tailor.connectors.destinations.audiences import profile_traits
    from tailor.connectors.records import import_records

    path = tmp_path / "crm.csv"
    path.write_text(
        "crm_id,email,tier\nC1,ana@example.org,gold\nC2,ben@example.org,silver\n", encoding="utf-8"
    )
    import_records(runtime.db, runtime.writer, "crm", path, "crm_id")
    path.write_text("crm_id,email,tier\nC1,ana@example.org,platinum\n", encoding="utf-8")
    import_records(runtime.db, runtime.writer, "crm", path, "crm_id")
    runtime.processor.run_once()
    rows = runtime.db.execute(f"SELECT tier::VARCHAR FROM ({profile_traits(['tier'])}) ORDER BY 1")
    assert rows == [('"platinum"',), ('"silver"',)]


def test_a_segment_audience_follows_the_segments_membership(runtime: Runtime, tmp_path: Path) -> None:
    import msgspec

    from tailor.collect.writer import Submission
    from tailor.connectors.exceptions import ConnectorError

    def identify(email: str, city: str) -> None:
        message = {"type": "identify", "userId": email, "traits": {"email": email, "city": city}}
        from datetime import UTC, datetime

        now = datetime.now(UTC)
        rows, _ = runtime.validator.validate("web", [msgspec.json.encode(message)], now)
        runtime.writer.submit(Submission("web", "identify", now, rows, [])).result()
        runtime.writer.flush()
        runtime.processor.run_once()

    spec = {
        "type": "file_destination",
        "path": str(tmp_path / "out"),
        "segment": "londoners",
        "traits": ["city"],
    }
    save_declaration(runtime.data_dir, "aud", spec)
    missing = runtime.connectors.run("aud")
    assert missing.status == "failed"
    assert "no segment named 'londoners'" in (missing.error or "")
    runtime.definitions.put_segment(
        {"name": "londoners", "condition": {"trait": "city", "op": "=", "value": "London"}}
    )
    identify("ana@example.org", "London")
    identify("ben@example.org", "London")
    identify("cy@example.org", "Paris")
    first = runtime.connectors.run("aud")
    assert (first.status, first.rows_read, first.rows_written) == ("ok", 2, 2)
    table = pcsv.read_csv(sorted((tmp_path / "out").glob("*.csv"))[-1])
    assert sorted(table.column("email").to_pylist()) == ["ana@example.org", "ben@example.org"]
    assert set(table.column("city").to_pylist()) == {"London"}
    identify("ben@example.org", "Leeds")  # leaves the segment: deleted from the audience
    second = runtime.connectors.run("aud")
    assert (second.rows_read, second.rows_written) == (1, 1)
    last = pcsv.read_csv(sorted((tmp_path / "out").glob("*.csv"))[-1])
    assert last.column("_op").to_pylist() == ["delete"]
    with pytest.raises(ConnectorError, match="either a query or a segment"):
        save_declaration(runtime.data_dir, "bad", {**spec, "query": "SELECT 1"})
