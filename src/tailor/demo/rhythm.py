"""The calendar of the history: days, UK summer time, weekly rhythm, seasons and hours of the day."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from tailor.demo.dice import Dice, cumulative

DAY_MS = 86_400_000

# Monday first. Online shopping peaks on Sunday evening and Monday; shops on Saturday.
_ONLINE_WEEKDAY = (1.08, 1.0, 0.96, 0.98, 0.88, 0.9, 1.2)
_STORE_WEEKDAY = (0.7, 0.7, 0.75, 0.85, 1.0, 1.9, 1.1)

# Relative traffic by month, January sales and the run-up to Christmas being the high points.
_MONTH = (1.15, 0.8, 0.85, 0.9, 0.95, 1.0, 1.1, 0.9, 0.95, 1.05, 1.3, 1.4)

# Which categories sell more in which months (unlisted pairs are 1.0).
_CATEGORY_MONTH: dict[str, dict[int, float]] = {
    "Kids": {8: 1.8, 9: 1.4, 12: 1.5},
    "Furniture": {1: 1.3, 9: 1.3, 10: 1.3},
    "Bedroom": {1: 1.6, 10: 1.2, 11: 1.2},
    "Home Accessories": {10: 1.3, 11: 1.5, 12: 1.6},
    "Women": {6: 1.2, 7: 1.3, 11: 1.2},
    "Men": {6: 1.15, 12: 1.4},
}

# Local hour-of-day weights of visits by surface; a TV is watched in the evening, a desktop at work.
# fmt: off
_HOURS: dict[str, tuple[float, ...]] = {
    "desktop": (0.2, 0.1, 0.05, 0.05, 0.05, 0.1, 0.3, 0.8, 1.6, 2.2, 2.4, 2.3,
                2.6, 2.5, 2.2, 2.1, 1.9, 1.6, 1.4, 1.5, 1.6, 1.4, 0.9, 0.5),
    "mobile_web": (0.6, 0.3, 0.15, 0.1, 0.1, 0.2, 0.6, 1.3, 1.5, 1.3, 1.3, 1.5,
                   2.0, 1.9, 1.4, 1.3, 1.5, 1.8, 2.0, 2.4, 2.8, 2.9, 2.3, 1.3),
    "app": (0.5, 0.25, 0.1, 0.1, 0.1, 0.2, 0.6, 1.2, 1.3, 1.1, 1.1, 1.4,
            1.9, 1.7, 1.3, 1.2, 1.4, 1.8, 2.1, 2.6, 3.0, 3.0, 2.3, 1.2),
    "tv": (0.4, 0.1, 0.05, 0.05, 0.05, 0.05, 0.1, 0.2, 0.3, 0.3, 0.3, 0.4,
           0.5, 0.5, 0.5, 0.6, 0.8, 1.2, 2.0, 3.0, 3.6, 3.4, 2.2, 1.0),
    "store": (0, 0, 0, 0, 0, 0, 0, 0, 0.3, 1.0, 1.8, 2.2,
              2.6, 2.5, 2.4, 2.3, 2.1, 1.8, 1.2, 0.8, 0.3, 0, 0, 0),
    "call": (0, 0, 0, 0, 0, 0, 0, 0, 1.4, 2.2, 2.1, 1.9,
             1.5, 1.7, 1.8, 1.6, 1.4, 1.0, 0.6, 0.3, 0, 0, 0, 0),
}
# fmt: on


_HOURS_MINUTES = [f"{m // 60:02d}:{m % 60:02d}:" for m in range(1440)]
_SECONDS = [f"{s:02d}." for s in range(60)]
_MILLIS = [f"{m:03d}+00:00" for m in range(1000)]


def _last_sunday(year: int, month: int) -> date:
    first_next = date(year + (month == 12), month % 12 + 1, 1)
    last = first_next - timedelta(days=1)
    return last - timedelta(days=(last.weekday() + 1) % 7)


def uk_offset_hours(day: date) -> int:
    """Offset of UK local time from UTC on a date: 1 during British Summer Time, else 0."""
    return int(_last_sunday(day.year, 3) <= day < _last_sunday(day.year, 10))


class Calendar:
    """The days of the history, with per-day weights and the UK clock."""

    def __init__(self, end: datetime, days: int) -> None:
        self.days = days
        self.end_ms = int(end.astimezone(UTC).timestamp() * 1000)
        self.start_ms = self.end_ms - days * DAY_MS
        start = datetime.fromtimestamp(self.start_ms / 1000, UTC)
        self.dates = [(start + timedelta(days=d)).date() for d in range(days)]
        self.weekday = [d.weekday() for d in self.dates]
        self.offset = [uk_offset_hours(d) for d in self.dates]
        self.online = [
            _ONLINE_WEEKDAY[w] * _MONTH[d.month - 1] * _peak(d)
            for w, d in zip(self.weekday, self.dates, strict=True)
        ]
        self.store = [
            _STORE_WEEKDAY[w] * _MONTH[d.month - 1] * _peak(d)
            for w, d in zip(self.weekday, self.dates, strict=True)
        ]
        # The hour weights are shifted from local to UTC per day so that a visit drawn for a day
        # always starts inside that UTC day, which keeps the event stream orderable day by day.
        self._hours = {
            (kind, off): cumulative([weights[(h + off) % 24] for h in range(24)])
            for kind, weights in _HOURS.items()
            for off in (0, 1)
        }
        self._prefix: dict[int, str] = {}

    def day_start(self, day: int) -> int:
        """Epoch milliseconds at which a day of the history starts."""
        return self.start_ms + day * DAY_MS

    def category_factor(self, day: int, category: str) -> float:
        """How much more than usual a category sells on a day."""
        month = self.dates[min(max(day, 0), self.days - 1)].month  # visits may run past the last midnight
        return _CATEGORY_MONTH.get(category, {}).get(month, 1.0)

    def moment(self, dice: Dice, day: int, kind: str) -> int:
        """A random time (epoch ms) on a day, following the hour-of-day pattern of a surface."""
        hour = dice.index(self._hours[(kind, self.offset[day])])
        return self.day_start(day) + hour * 3_600_000 + dice.below(3_600_000)

    def iso(self, ms: int) -> str:
        """ISO 8601 timestamp with milliseconds and a UTC offset, e.g. 2026-10-31T14:03:22.123+00:00."""
        day, rest = divmod(ms, DAY_MS)
        try:
            prefix = self._prefix[day]
        except KeyError:
            prefix = self._prefix[day] = datetime.fromtimestamp(day * 86_400, UTC).strftime("%Y-%m-%dT")
        # Table lookups: formatting a timestamp field by field was the single largest cost per event.
        return prefix + _HOURS_MINUTES[rest // 60_000] + _SECONDS[rest // 1000 % 60] + _MILLIS[rest % 1000]

    def day_of(self, ms: int) -> int:
        """Index of the history day an instant falls on."""
        return (ms - self.start_ms) // DAY_MS


def _peak(d: date) -> float:
    """Sales events that lift traffic well above the monthly level."""
    if d.month == 11 and 20 <= d.day <= 30:
        return 1.8  # Black Friday week and Cyber Monday
    if d.month == 12 and 26 <= d.day <= 31:
        return 1.7  # Boxing Day sale
    if (d.month == 6 and d.day >= 24) or (d.month == 7 and d.day <= 6):
        return 1.35  # summer sale launch
    if d.month == 12 and 20 <= d.day <= 25:
        return 0.7  # last posting days have passed
    return 1.0
