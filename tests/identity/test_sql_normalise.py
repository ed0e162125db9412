"""Opaque ids are normalised in SQL during stitching: it must agree with the Python normaliser."""

from __future__ import annotations

import duckdb
from hypothesis import given, settings
from hypothesis import strategies as st

from tailor.identity import default_normaliser
from tailor.identity.extract import sql_id_normalisation

TYPES = ["user_id", "anonymous_id", "device_id", "crm_id", "record"]
_con = duckdb.connect()
_EXPR = sql_id_normalisation(default_normaliser(), TYPES, "id_type", "raw")


def _sql(type: str, raw: str) -> tuple[str | None, str | None]:
    expr = _EXPR
    row = _con.execute(
        f"SELECT n.value, n.reason FROM (SELECT {expr} AS n FROM (SELECT ? AS id_type, ? AS raw))",
        [type, raw],
    )
    value, reason = row.fetchone()  # type: ignore[misc]
    return value, reason


_tricky = st.sampled_from(
    [
        "null",
        " NULL ",
        "undefined",
        "0",
        "-1",
        "000-000",
        "\tu-1\n",
        "",
        "   ",
        "a\x00b",
        "x" * 256,
        "ok",
        "Anonymous",
    ]
)


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(TYPES), st.one_of(_tricky, st.text(max_size=40)))
def test_sql_and_python_agree(type: str, raw: str) -> None:
    python = default_normaliser().normalise(type, raw)
    value, reason = _sql(type, raw)
    assert value == python.value, (raw, reason, python)
    if python.reason is None:
        assert reason is None
    else:
        assert reason is not None
        assert reason.split(":")[0] == python.reason.split(":")[0], (raw, reason, python.reason)


def test_reasons_name_the_problem() -> None:
    assert _sql("user_id", "null") == (None, "blocked: 'null' is a blocked user_id value")
    assert _sql("user_id", " u-1 ") == ("u-1", None)
    assert (
        _sql("device_id", "0000-0000")[1]
        == "blocked: '0000-0000' matches the blocked device_id pattern '^[0-]+$'"
    )
    assert _sql("crm_id", "c" * 300)[1] == "too long: 300 characters, at most 255 are accepted"
