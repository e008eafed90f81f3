"""The working-day calendar (рабочий календарь / жұмыс күнтізбесі) behind the service deadline.

The standard's term is "1 working day from submission"; requests after hours, at weekends or on
holidays count from the next working day (e-service-domain §3). The deadline is working time:
submission + `term` × (the length of a working day), counted only inside working hours, so
Tuesday 10:00 → Wednesday 10:00 and Friday 19:00 → Monday at closing time.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

# Mangystau region, whose regulation this is (UTC+5, no daylight saving).
DEFAULT_TIMEZONE = "Asia/Aqtau"
# Days off of the Law "On holidays" (01-07 and Kurban ait are religious days off; Kurban ait moves,
# so its dates go in `holidays`). Transfers of days off by government decree go there too.
DEFAULT_YEARLY_HOLIDAYS = ("01-01", "01-02", "01-07", "03-08", "03-21", "03-22", "03-23", "05-01", "05-07",
                           "05-09", "07-06", "08-30", "10-25", "12-16")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# A calendar with no working day within ten years is a configuration error, not a long wait.
_SEARCH_DAYS = 3660


def default_timezone() -> tzinfo:
    """Asia/Aqtau; its fixed offset where the system has no time zone database (no DST in Kazakhstan)."""
    try:
        return ZoneInfo(DEFAULT_TIMEZONE)
    except ZoneInfoNotFoundError:
        return timezone(timedelta(hours=5), "UTC+05")


@dataclass(frozen=True)
class WorkingCalendar:
    timezone: tzinfo = field(default_factory=default_timezone)
    opens: time = time(9, 0)
    closes: time = time(18, 0)
    weekend: frozenset[int] = frozenset({5, 6})  # date.weekday(): Monday is 0
    holidays: frozenset[date] = frozenset()
    yearly_holidays: frozenset[tuple[int, int]] = frozenset(
        (int(day[:2]), int(day[3:])) for day in DEFAULT_YEARLY_HOLIDAYS)
    working_days: frozenset[date] = frozenset()  # weekend days made working by a transfer decree

    def __post_init__(self):
        if self.opens >= self.closes:
            raise ValueError(f"working hours must open before they close, got {self.opens}–{self.closes}")
        if len(self.weekend) >= 7 and not self.working_days:
            raise ValueError("every weekday is a weekend day: no deadline could ever be reached")

    @classmethod
    def from_mapping(cls, table: dict) -> WorkingCalendar:
        """From the `[portal.calendar]` table (docs/api.md): timezone, hours, weekend, holidays, working_days."""
        unknown = set(table) - {"timezone", "hours", "weekend", "holidays", "yearly_holidays", "working_days"}
        if unknown:
            raise ValueError(f"portal.calendar: unknown keys {', '.join(sorted(unknown))}")
        fields = {}
        if "timezone" in table:
            try:
                fields["timezone"] = ZoneInfo(str(table["timezone"]))
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"portal.calendar.timezone: unknown time zone {table['timezone']!r}") from None
        if "hours" in table:
            opens, _, closes = str(table["hours"]).partition("-")
            fields["opens"], fields["closes"] = time.fromisoformat(opens.strip()), time.fromisoformat(closes.strip())
        if "weekend" in table:
            try:
                fields["weekend"] = frozenset(WEEKDAYS.index(str(day).lower()[:3]) for day in table["weekend"])
            except ValueError:
                raise ValueError(f"portal.calendar.weekend: days are {', '.join(WEEKDAYS)}") from None
        if "holidays" in table:
            fields["holidays"] = frozenset(_date(day) for day in table["holidays"])
        if "yearly_holidays" in table:
            fields["yearly_holidays"] = frozenset(_month_day(day) for day in table["yearly_holidays"])
        if "working_days" in table:
            fields["working_days"] = frozenset(_date(day) for day in table["working_days"])
        return cls(**fields)

    def is_working_day(self, day: date) -> bool:
        if day in self.working_days:
            return True
        return not (day.weekday() in self.weekend or day in self.holidays
                    or (day.month, day.day) in self.yearly_holidays)

    def next_working_day(self, day: date) -> date:
        for _ in range(_SEARCH_DAYS):
            day += timedelta(days=1)
            if self.is_working_day(day):
                return day
        raise ValueError(f"no working day within {_SEARCH_DAYS} days after {day}: check the calendar")

    @property
    def day_length(self) -> timedelta:
        return datetime.combine(date.min, self.closes) - datetime.combine(date.min, self.opens)

    def deadline(self, submitted: datetime, working_days: int = 1) -> datetime:
        """`submitted` (aware) plus `working_days` of working time, in the calendar's time zone."""
        if working_days < 1:
            raise ValueError(f"the term is at least one working day, got {working_days}")
        local = submitted.astimezone(self.timezone).replace(tzinfo=None)
        day = local.date()
        if not self.is_working_day(day) or local.time() >= self.closes:
            day = self.next_working_day(day)
            moment = datetime.combine(day, self.opens)
        else:
            moment = max(local, datetime.combine(day, self.opens))
        remaining = self.day_length * working_days
        while True:
            available = datetime.combine(day, self.closes) - moment
            if remaining <= available:
                return (moment + remaining).replace(tzinfo=self.timezone)
            remaining -= available
            day = self.next_working_day(day)
            moment = datetime.combine(day, self.opens)


def _date(value) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def _month_day(value: str) -> tuple[int, int]:
    month, _, day = str(value).partition("-")
    moment = date(2000, int(month), int(day))  # a leap year, so 02-29 is accepted
    return moment.month, moment.day
