"""The senders of each kind of destination; each applies a batch at most once by its batch id."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import time
from pathlib import Path
from typing import Any, Protocol

import httpx
import msgspec
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

from tailor.connectors.destinations.outbox import Batch
from tailor.connectors.destinations.spec import (
    FileDestinationSpec,
    SqlDestinationSpec,
    WebhookDestinationSpec,
)
from tailor.connectors.exceptions import DestinationRejectedError, DestinationUnavailableError
from tailor.connectors.sqldb import Connection, Dialect, dialect_of, resolve_secret

SIGNATURE_HEADER = "X-Tailor-Signature"


class Sender(Protocol):
    """Applies one batch to a destination; raises DestinationUnavailable/Rejected errors."""

    def send(self, destination: str, batch: Batch) -> None: ...
    def close(self) -> None: ...


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The signature header of a webhook delivery: `t=<unix time>,v1=<hex HMAC-SHA256 of "t.body">`."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


class WebhookSender:
    """POSTs each batch as JSON with an Idempotency-Key (the batch id) and an HMAC signature."""

    def __init__(self, spec: WebhookDestinationSpec) -> None:
        self.spec = spec
        self._client = httpx.Client(timeout=spec.timeout_s)

    def send(self, destination: str, batch: Batch) -> None:
        body = msgspec.json.encode(
            {
                "destination": destination,
                "batch_id": batch.batch_id,
                "rows": [{"key": r.key, "op": r.op, "data": r.data()} for r in batch.rows],
            }
        )
        # The signature covers the time it was made, so a captured request cannot be replayed later.
        headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": f"{destination}:{batch.batch_id}",
            SIGNATURE_HEADER: signature(resolve_secret(self.spec.secret), int(time.time()), body),
        }
        try:
            response = self._client.post(self.spec.url, content=body, headers=headers)
        except httpx.HTTPError as e:
            raise DestinationUnavailableError(f"POST {self.spec.url}: {type(e).__name__}: {e}") from e
        status = response.status_code
        if 200 <= status < 300:
            return
        text = response.text[:300]
        if status in (408, 425, 429) or status >= 500:
            raise DestinationUnavailableError(f"POST {self.spec.url}: HTTP {status}: {text}")
        raise DestinationRejectedError(f"POST {self.spec.url}: HTTP {status}: {text}")

    def close(self) -> None:
        self._client.close()


_BATCHES_TABLE = "_tailor_batches"


def _sql_type(dialect: Dialect, value: Any, key: bool) -> str:
    if key:
        return "VARCHAR(255)"
    if isinstance(value, bool):
        return "BOOLEAN"
    if isinstance(value, int):
        return "BIGINT"
    if isinstance(value, float):
        return "DOUBLE PRECISION" if dialect.name == "postgres" else "DOUBLE"
    return "TEXT"


def _sql_value(value: Any) -> Any:
    return msgspec.json.encode(value).decode() if isinstance(value, dict | list) else value


class SqlSender:
    """Upserts (and deletes) a batch in one transaction that also records its batch id as applied."""

    def __init__(self, spec: SqlDestinationSpec) -> None:
        self.spec = spec
        self.dialect = dialect_of(spec.url)
        self._con: Connection | None = None
        self._columns: list[str] | None = None

    def _connection(self) -> Connection:
        if self._con is None:
            try:
                self._con = self.dialect.connect(self.spec.url)
            except Exception as e:
                raise DestinationUnavailableError(str(e)) from e
        return self._con

    def _prepare(self, cur: Any, columns: list[str], sample: dict[str, Any]) -> None:
        q = self.dialect.quote
        key = self.spec.export_key
        defs = ", ".join(f"{q(c)} {_sql_type(self.dialect, sample.get(c), c == key)}" for c in columns)
        cur.execute(f"CREATE TABLE IF NOT EXISTS {q(self.spec.table)} ({defs}, PRIMARY KEY ({q(key)}))")
        cur.execute(
            f"CREATE TABLE IF NOT EXISTS {q(_BATCHES_TABLE)} (destination VARCHAR(200) NOT NULL,"
            " batch_id VARCHAR(64) NOT NULL, applied_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,"
            " PRIMARY KEY (destination, batch_id))"
        )

    def send(self, destination: str, batch: Batch) -> None:
        q = self.dialect.quote
        con = self._connection()
        upserts = [r.data() or {} for r in batch.rows if r.op == "upsert"]
        deletes = [r.key for r in batch.rows if r.op == "delete"]
        columns = list(upserts[0]) if upserts else [self.spec.export_key]
        try:
            cur = con.cursor()
            try:
                self._prepare(cur, columns, upserts[0] if upserts else {})
                con.commit()
                cur.execute(
                    f"SELECT 1 FROM {q(_BATCHES_TABLE)} WHERE destination = %s AND batch_id = %s",
                    (destination, batch.batch_id),
                )
                if cur.fetchone() is not None:
                    con.rollback()
                    return  # applied before a crash kept Tailor from recording it: not again
                if upserts:
                    sql = self.dialect.upsert(self.spec.table, columns, self.spec.export_key)
                    cur.executemany(sql, [tuple(_sql_value(row.get(c)) for c in columns) for row in upserts])
                if deletes:
                    cur.executemany(
                        f"DELETE FROM {q(self.spec.table)} WHERE {q(self.spec.export_key)} = %s",
                        [(k,) for k in deletes],
                    )
                cur.execute(
                    f"INSERT INTO {q(_BATCHES_TABLE)} (destination, batch_id) VALUES (%s, %s)",
                    (destination, batch.batch_id),
                )
                con.commit()
            finally:
                cur.close()
        except (DestinationRejectedError, DestinationUnavailableError):
            raise
        except Exception as e:
            self._drop()
            if self.dialect.is_transient(e):
                raise DestinationUnavailableError(f"{self.dialect.name} {self.spec.table}: {e}") from e
            raise DestinationRejectedError(f"{self.dialect.name} {self.spec.table}: {e}") from e

    def _drop(self) -> None:
        if self._con is not None:
            with contextlib.suppress(Exception):  # already broken; a new one is made next time
                self._con.close()
            self._con = None

    def close(self) -> None:
        self._drop()


class FileSender:
    """Writes each batch as one file named after it (written aside, then renamed into place)."""

    def __init__(self, spec: FileDestinationSpec, folder: Path) -> None:
        self.spec = spec
        self.folder = folder

    def send(self, destination: str, batch: Batch) -> None:
        target = self.folder / f"{destination}-{batch.batch_id}.{self.spec.format}"
        if target.exists():
            return  # written before a crash kept Tailor from recording it
        rows = [{"_op": r.op, "_key": r.key, **(r.data() or {})} for r in batch.rows]
        names = list(dict.fromkeys(k for row in rows for k in row))
        columns = {n: [_sql_value(row.get(n)) for row in rows] for n in names}
        try:
            table = pa.table(columns)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            table = pa.table({n: [None if v is None else str(v) for v in vs] for n, vs in columns.items()})
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(target.name + ".tmp")
            if self.spec.format == "csv":
                pcsv.write_csv(table, tmp)
            else:
                pq.write_table(table, tmp)
            tmp.replace(target)
        except OSError as e:
            raise DestinationUnavailableError(f"{target}: {e}") from e

    def close(self) -> None:
        pass
