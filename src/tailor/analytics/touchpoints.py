"""Touchpoints and conversions from the event log, on identity-resolved people, and journeys from them.

An event's person is the profile of its hub identifier (`identity_event_hubs` joined to
`identity_nodes`), so the touches of one person on several devices make one journey. A touchpoint
is how a visit arrived (UTM tags in `context.campaign`, else the referrer of the landing page,
else direct) or a click in a message (`Email Link Clicked`, `SMS Link Clicked`). The same touch
again within a short time is one touch: a click and the visit its link opens are one email touch.
A conversion is a conversion event (`Order Completed`) with its value.
"""

from __future__ import annotations

import duckdb

from tailor.analytics.dialect import DUCKDB, Dialect
from tailor.analytics.journeys import PATHS_DDL, TOUCHES_DDL, PathTables
from tailor.analytics.settings import AnalyticsConfig
from tailor.process.stage import SqlStep

MESSAGE_CLICKS = {
    "Email Link Clicked": "email",
    "SMS Link Clicked": "sms",
    "Push Notification Tapped": "push",
}
"""Events that are a click on a message, and the channel of that message."""

# UTM medium -> channel. Values not listed are kept as they are.
MEDIUM_CHANNEL = {
    "cpc": "paid_search",
    "ppc": "paid_search",
    "paidsearch": "paid_search",
    "paid_search": "paid_search",
    "paid_social": "paid_social",
    "paidsocial": "paid_social",
    "display": "display",
    "cpm": "display",
    "banner": "display",
    "affiliate": "affiliate",
    "social": "organic_social",
    "organic": "organic_search",
    "email": "email",
    "sms": "sms",
    "referral": "referral",
}
SEARCH_HOSTS = "google|bing|duckduckgo|ecosia|yahoo|baidu|yandex"
SOCIAL_HOSTS = "instagram|facebook|pinterest|tiktok|twitter|t\\.co|x\\.com|linkedin|reddit|youtube"


def _case(column: str, mapping: dict[str, str], default: str) -> str:
    whens = " ".join(f"WHEN '{k}' THEN '{v}'" for k, v in mapping.items())
    return f"CASE lower({column}) {whens} ELSE {default} END"


def person_events_sql(d: Dialect = DUCKDB) -> str:
    """SQL of every event with its person: (seq, person, ts, type, name, properties, context, source_id)."""
    return """SELECT e.seq, n.profile_id AS person, e."timestamp" AS ts, e.type,
        coalesce(e.event, e.name, e.type) AS name, e.properties, e.context, e.source_id
    FROM events e JOIN identity_event_hubs h ON h.seq = e.seq JOIN identity_nodes n ON n.k = h.k"""


def touch_steps(config: AnalyticsConfig, d: Dialect = DUCKDB) -> list[SqlStep]:
    """Steps building `an_events` (a view), `an_touches` and `an_conversions` on one cursor."""
    medium = d.text("context", "$.campaign.medium")
    referrer = d.text("properties", "$.referrer")
    url = d.text("properties", "$.url")
    host = "regexp_extract({u}, '^[a-z]+://(www\\.)?([^/:?]+)', 2)"
    ref_host, page_host = host.format(u=referrer), host.format(u=url)
    clicks = ", ".join(f"'{e}'" for e in MESSAGE_CLICKS)
    click_channel = _case("name", {k.lower(): v for k, v in MESSAGE_CLICKS.items()}, "NULL")
    by_referrer = f"""CASE WHEN coalesce({referrer}, '') = '' THEN 'direct'
        WHEN regexp_matches({ref_host}, '(^|\\.)({SEARCH_HOSTS})\\.') THEN 'organic_search'
        WHEN regexp_matches({ref_host}, '(^|\\.)({SOCIAL_HOSTS})(\\.|$)') THEN 'organic_social'
        ELSE 'referral' END"""
    gap = config.repeat_gap_minutes * 60
    return [
        SqlStep(f"CREATE OR REPLACE TEMP VIEW an_events AS {person_events_sql(d)}", "an_events"),
        SqlStep(
            f"""CREATE OR REPLACE TEMP TABLE an_raw_touches AS
            SELECT seq, person, ts,
                CASE WHEN name IN ({clicks}) THEN {click_channel}
                     WHEN {medium} IS NOT NULL THEN {_case(medium, MEDIUM_CHANNEL, "lower(" + medium + ")")}
                     WHEN type = 'page' THEN {by_referrer}
                     ELSE 'direct' END AS channel,
                coalesce({d.text("context", "$.campaign.name")}, {d.text("properties", "$.campaign_id")},
                         '(none)') AS campaign
            FROM an_events
            WHERE name IN ({clicks})
               OR {medium} IS NOT NULL AND type IN ('page', 'screen')
               OR type = 'page' AND coalesce({ref_host}, '') <> coalesce({page_host}, '')
               OR name = 'Application Opened'""",
            "an_raw_touches",
        ),
        # A repeat of the touch just before it (same channel and campaign, within the gap) is dropped.
        SqlStep(
            f"""CREATE OR REPLACE TEMP TABLE an_touches AS
            SELECT seq, person, ts, channel, campaign FROM (
                SELECT *, lag(channel) OVER w AS prev_channel, lag(campaign) OVER w AS prev_campaign,
                       lag(ts) OVER w AS prev_ts
                FROM an_raw_touches WINDOW w AS (PARTITION BY person ORDER BY ts, seq)
            ) WHERE prev_ts IS NULL OR channel <> prev_channel OR campaign <> prev_campaign
                 OR {d.seconds("prev_ts", "ts")} > {gap!r}""",
            "an_touches",
        ),
        SqlStep(
            f"""CREATE OR REPLACE TEMP TABLE an_conversions AS
            SELECT seq, person, ts,
                   greatest(coalesce(try_cast({d.text("properties", "$.total")} AS DOUBLE),
                                     try_cast({d.text("properties", "$.revenue")} AS DOUBLE),
                                     try_cast({d.text("properties", "$.value")} AS DOUBLE), 0), 0) AS value,
                   lag(ts) OVER (PARTITION BY person ORDER BY ts, seq) AS prev_ts
            FROM an_events WHERE name = '{config.conversion_event.replace("'", "''")}'""",
            "an_conversions",
        ),
    ]


def journey_steps(config: AnalyticsConfig, level: str = "channel", d: Dialect = DUCKDB) -> list[SqlStep]:
    """Steps cutting touches into journeys: each conversion's touches since the previous one within the
    lookback window, and each person's touches after their last conversion as a journey that did not
    convert. A conversion with no touch before it is one journey through `(no touch)`."""
    key = "channel" if level == "channel" else "channel || ' / ' || campaign"
    window = config.lookback_days * 86400
    return [
        SqlStep(
            f"""CREATE OR REPLACE TEMP TABLE an_journey_touches AS
            SELECT c.seq AS path_id, t.seq, t.ts, {key} AS key, {d.seconds("t.ts", "c.ts")} / 86400.0 AS age
            FROM an_conversions c JOIN an_touches t ON t.person = c.person
            WHERE t.ts <= c.ts AND (c.prev_ts IS NULL OR t.ts > c.prev_ts)
              AND {d.seconds("t.ts", "c.ts")} <= {window!r}
            UNION ALL
            SELECT -dense_rank() OVER (ORDER BY t.person), t.seq, t.ts, {key},
                   {d.seconds("t.ts", "l.last_touch")} / 86400.0
            FROM an_touches t
            JOIN (SELECT person, max(ts) AS last_touch FROM an_touches GROUP BY person) l ON l.person = t.person
            LEFT JOIN (SELECT person, max(ts) AS last_conversion FROM an_conversions GROUP BY person) c
                ON c.person = t.person
            WHERE (c.last_conversion IS NULL OR t.ts > c.last_conversion)
              AND {d.seconds("t.ts", "l.last_touch")} <= {window!r}""",
            "an_journey_touches",
        ),
        SqlStep(f"CREATE OR REPLACE TEMP TABLE an_paths ({PATHS_DDL})", "an_paths"),
        SqlStep(
            """INSERT INTO an_paths
            SELECT seq, 1.0, value, 0.0 FROM an_conversions
            UNION ALL SELECT DISTINCT path_id, 0.0, 0.0, 1.0 FROM an_journey_touches WHERE path_id < 0""",
            "an_paths",
        ),
        SqlStep(f"CREATE OR REPLACE TEMP TABLE an_path_touches ({TOUCHES_DDL})", "an_path_touches"),
        SqlStep(
            """INSERT INTO an_path_touches
            SELECT path_id, row_number() OVER (PARTITION BY path_id ORDER BY ts, seq),
                   count(*) OVER (PARTITION BY path_id), key, age FROM an_journey_touches
            UNION ALL
            SELECT seq, 1, 1, '(no touch)', 0.0 FROM an_conversions
            WHERE seq NOT IN (SELECT path_id FROM an_journey_touches WHERE path_id > 0)""",
            "an_path_touches",
        ),
    ]


def build_touches(cur: duckdb.DuckDBPyConnection, config: AnalyticsConfig, d: Dialect = DUCKDB) -> None:
    """Builds `an_events`, `an_touches` and `an_conversions` on `cur`."""
    from tailor.process.stage import run_steps

    run_steps(cur, "analytics", touch_steps(config, d))


def event_journeys(
    cur: duckdb.DuckDBPyConnection, config: AnalyticsConfig, level: str = "channel", d: Dialect = DUCKDB
) -> PathTables:
    """Journeys of the event log's people, credited to channels or to `channel / campaign`."""
    from tailor.process.stage import run_steps

    run_steps(cur, "analytics", journey_steps(config, level, d))
    return PathTables(cur, "an_paths", "an_path_touches", "days")
