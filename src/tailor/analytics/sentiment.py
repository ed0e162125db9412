"""Sentiment of review and support text, scored offline with the VADER lexicon shipped in its package."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import duckdb
import pyarrow as pa

from tailor.store.database import registered


@lru_cache(maxsize=1)
def _analyzer() -> Any:
    # Loads the lexicon file from the installed package; nothing is fetched.
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


def score(texts: list[str]) -> list[float]:
    """VADER's compound score of each text, from -1 (negative) to 1 (positive)."""
    analyzer = _analyzer()
    return [float(analyzer.polarity_scores(t)["compound"]) for t in texts]


def texts_sql() -> str:
    """SQL of (person, ts, kind, text): product reviews and call-centre notes, per person."""
    return """SELECT person, ts, 'review' AS kind, json_extract_string(properties, '$.review_body') AS text
        FROM an_events WHERE name = 'Product Reviewed' AND json_extract_string(properties, '$.review_body') <> ''
        UNION ALL
        SELECT e.person, e.ts, 'support', json_extract_string(r.fields, '$.notes')
        FROM an_events e JOIN records r ON r.seq = e.seq
        WHERE r.kind = 'call_centre' AND coalesce(json_extract_string(r.fields, '$.notes'), '') <> ''"""


def build_sentiment(cur: duckdb.DuckDBPyConnection) -> int:
    """Builds `an_sentiment(person, ts, kind, text, sentiment)`; each distinct text is scored once."""
    has_records = cur.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'records'"
    ).fetchone()
    sql = texts_sql() if has_records and has_records[0] else texts_sql().split("UNION ALL")[0]
    cur.execute(f"CREATE OR REPLACE TEMP TABLE an_texts AS {sql}")
    distinct = [t for (t,) in cur.execute("SELECT DISTINCT text FROM an_texts").fetchall()]
    scored = pa.table(
        {"text": pa.array(distinct, pa.string()), "sentiment": pa.array(score(distinct), pa.float64())}
    )
    with registered(cur, _scored=scored):
        cur.execute(
            """CREATE OR REPLACE TEMP TABLE an_sentiment AS
            SELECT t.*, s.sentiment FROM an_texts t JOIN _scored s ON s.text = t.text"""
        )
    return len(distinct)
