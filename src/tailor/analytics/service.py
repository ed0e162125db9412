"""Journey analytics over one store: every analysis computed on its own cursor from the live tables."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal

import duckdb

from tailor.analytics import engagement as eng
from tailor.analytics.attribution import Attribution, attribute
from tailor.analytics.drivers import Drivers, conversion_drivers
from tailor.analytics.funnels import FunnelDefinition, FunnelResult, run_funnel
from tailor.analytics.paths import Kind, PathReport, top_paths
from tailor.analytics.retention import Period, Retention, retention
from tailor.analytics.roas import Reallocation, Return, reallocate, returns, spend_by
from tailor.analytics.settings import AnalyticsConfig
from tailor.analytics.spend import SpendImport, import_spend, setup
from tailor.analytics.touchpoints import build_touches, event_journeys
from tailor.store.database import Database

TRAITS_SQL = """CREATE OR REPLACE TEMP TABLE an_traits AS
    SELECT n.profile_id AS person, e."timestamp" AS ts, e.traits FROM events e
    JOIN identity_event_hubs h ON h.seq = e.seq JOIN identity_nodes n ON n.k = h.k
    WHERE e.type = 'identify' AND e.traits IS NOT NULL"""


class JourneyAnalytics:
    """Paths, funnels, retention, attribution, return on spend, engagement and drivers of one store."""

    def __init__(self, db: Database, config: AnalyticsConfig | None = None) -> None:
        self.db = db
        self.config = config or AnalyticsConfig()
        setup(db)

    @contextmanager
    def _cursor(self) -> Iterator[duckdb.DuckDBPyConnection]:
        cur = self.db.cursor()
        try:
            build_touches(cur, self.config)
            yield cur
        finally:
            cur.close()

    def attribution(self, level: Literal["channel", "campaign"] = "channel") -> Attribution:
        """Every model over the people's journeys, credited to channels or to campaigns."""
        with self._cursor() as cur:
            return self._attribute(cur, level)

    def _attribute(self, cur: duckdb.DuckDBPyConnection, level: str) -> Attribution:
        c = self.config
        return attribute(event_journeys(cur, c, level), c.half_life_days, c.position_ends, c.markov_order)

    def funnel(self, definition: FunnelDefinition) -> FunnelResult:
        """A funnel over the people's events."""
        with self._cursor() as cur:
            cur.execute(TRAITS_SQL)
            return run_funnel(cur, definition)

    def paths(
        self,
        kind: Kind = "channel",
        anchor: str | None = None,
        direction: Literal["from", "to"] = "from",
        steps: int = 4,
        by_session: bool = False,
        limit: int = 10,
    ) -> PathReport:
        """The most travelled paths and their Sankey links."""
        with self._cursor() as cur:
            return top_paths(cur, self.config, kind, anchor, direction, steps, limit, by_session)

    def retention(
        self,
        period: Period = "week",
        cohort_by: Literal["first_seen", "first_purchase"] = "first_seen",
        activity: Literal["any", "purchase"] = "any",
    ) -> Retention:
        """Retention by cohort."""
        with self._cursor() as cur:
            return retention(cur, self.config, period, cohort_by, activity)

    def import_spend(self, text: str, source: str) -> SpendImport:
        """Stores the good rows of a spend CSV and reports the others."""
        return import_spend(self.db, text, source, self.config.currency)

    def returns(self, level: Literal["channel", "campaign"] = "channel") -> dict[str, dict[str, Return]]:
        """ROAS and ROI per channel or campaign under every model."""
        with self._cursor() as cur:
            return returns(self._attribute(cur, level), spend_by(cur, level))

    def reallocation(self, model: str = "markov") -> Reallocation:
        """A budget reallocation suggestion with its reasoning."""
        with self._cursor() as cur:
            return reallocate(cur, self._attribute(cur, "channel"), model)

    def engagement(self, limit: int = 20, person: str | None = None) -> list[eng.PersonEngagement]:
        """The most engaged people, or one person."""
        with self._cursor() as cur:
            eng.build_engagement(cur, self.config.conversion_event)
            return eng.top_engaged(cur, limit, person)

    def lifecycle(self, person: str | None = None) -> dict[str, object]:
        """Stage counts per month and stage-to-stage flows, or one person's stage history."""
        with self._cursor() as cur:
            eng.build_engagement(cur, self.config.conversion_event)
            if person is not None:
                return {"person": person, "history": eng.stage_history(cur, person)}
            return {"months": eng.stage_counts(cur), "flows": eng.stage_flows(cur)}

    def drivers(self, penalty: float = 1.0) -> Drivers:
        """Behaviours associated with converting, strongest first."""
        with self._cursor() as cur:
            return conversion_drivers(cur, self.config.conversion_event, penalty)
