"""Working-time clock, checked against a minute-by-minute count written here from scratch.

The reference steps through local wall-clock minutes and asks ``chinese_calendar.is_workday``
(or a plain Monday-Friday rule) about every day, so it shares no code or idea with the
cumulative-table/searchsorted implementation beyond the definition of working time.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from zoneinfo import ZoneInfo

import chinese_calendar
import numpy as np
import pandas as pd
import pytest

from gis.workclock import OFFICIAL_YEARS, WorkClock, WorkingHours

SH = ZoneInfo("Asia/Shanghai")
UTC = dt.UTC
PERIODS_MIN = ((9 * 60, 12 * 60), (13 * 60 + 30, 17 * 60 + 30))  # default periods, in minutes
LOCAL_ORIGIN = dt.datetime(2024, 1, 1)  # brute-force minute 0, local wall clock


def weekday_rule(day: dt.date) -> bool:
    return day.weekday() < 5


class MinuteClock:
    """Reference: walks local minutes one by one (only valid for fixed-offset zones)."""

    def __init__(
        self,
        is_workday: Callable[[dt.date], bool] = chinese_calendar.is_workday,
        periods: tuple[tuple[int, int], ...] = PERIODS_MIN,
        zone: ZoneInfo = SH,
    ) -> None:
        self.is_workday = is_workday
        self.periods = periods
        self.zone = zone
        self._days: dict[int, bool] = {}

    def working(self, minute: int) -> bool:
        day, of_day = divmod(minute, 1440)
        if day not in self._days:
            self._days[day] = bool(self.is_workday((LOCAL_ORIGIN + dt.timedelta(days=day)).date()))
        return self._days[day] and any(s <= of_day < e for s, e in self.periods)

    def minute_of(self, t: dt.datetime) -> int:
        local = t.astimezone(self.zone).replace(tzinfo=None)
        assert local.second == 0 and local.microsecond == 0
        return int((local - LOCAL_ORIGIN) // dt.timedelta(minutes=1))

    def instant(self, minute: int) -> dt.datetime:
        return (LOCAL_ORIGIN + dt.timedelta(minutes=minute)).replace(tzinfo=self.zone)

    def add_minutes(self, start: dt.datetime, minutes: int) -> dt.datetime:
        m = self.minute_of(start)
        if minutes == 0:
            while not self.working(m):
                m += 1
            return self.instant(m)
        count = 0
        while True:
            if self.working(m):
                count += 1
                if count == minutes:
                    return self.instant(m + 1)
            m += 1

    def hours_between(self, a: dt.datetime, b: dt.datetime) -> float:
        lo, hi = sorted((self.minute_of(a), self.minute_of(b)))
        minutes = sum(self.working(m) for m in range(lo, hi))
        return (minutes if a <= b else -minutes) / 60


def local(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=SH)


def holiday_days(name: str, year: int) -> list[dt.date]:
    """Days off of one named holiday, read from the package."""
    start = dt.date(year, 1, 1)
    days = [start + dt.timedelta(days=i) for i in range(366 if year % 4 == 0 else 365)]
    return [
        d
        for d in days
        if chinese_calendar.get_holiday_detail(d) == (True, name)
        and not chinese_calendar.is_workday(d)
    ]


def makeup_workdays(name: str, year: int) -> list[dt.date]:
    """Weekend days made working days (调休) for one named holiday, read from the package."""
    start = dt.date(year, 1, 1)
    days = [start + dt.timedelta(days=i) for i in range(365)]
    return [
        d
        for d in days
        if d.weekday() >= 5
        and chinese_calendar.is_workday(d)
        and chinese_calendar.get_holiday_detail(d)[1] == name
    ]


# Times of day that probe night, the boundaries of both periods and the lunch break.
PROBE_TIMES = [(2, 0), (8, 59), (9, 0), (11, 59), (12, 0), (12, 45), (13, 30), (17, 29), (17, 30)]
AMOUNTS_H = [0, 0.25, 1.5, 7, 3 * 7, 10 * 7]  # hours; the last two are 3 and 10 working days


@pytest.fixture(scope="module")
def clock() -> WorkClock:
    return WorkClock()


@pytest.fixture(scope="module")
def minutes() -> MinuteClock:
    return MinuteClock()


def test_package_has_2026_spring_festival_week_and_saturday_makeup_days():
    off = holiday_days("Spring Festival", 2026)
    assert off == [dt.date(2026, 2, 15) + dt.timedelta(days=i) for i in range(9)]
    assert makeup_workdays("Spring Festival", 2026) == [dt.date(2026, 2, 14), dt.date(2026, 2, 28)]
    assert OFFICIAL_YEARS.start <= 2025 and 2026 in OFFICIAL_YEARS
    clock = WorkClock()
    assert [clock.is_workday(d) for d in off] == [False] * 9
    assert clock.is_workday(dt.date(2026, 2, 14)) and clock.is_workday(dt.date(2026, 2, 28))


def test_default_working_day_is_seven_hours():
    assert WorkingHours().hours_per_day == 7.0
    hours = WorkingHours(((dt.time(8, 30), dt.time(12, 0)), (dt.time(12, 0), dt.time(17, 0))))
    assert hours.hours_per_day == 8.5


def test_seven_hours_from_friday_before_spring_festival_end_on_makeup_saturday(clock):
    # Fri 13 Feb 16:00: 1.5 h that day, then the make-up Saturday 14 Feb gives the other 5.5 h.
    assert clock.add(local(2026, 2, 13, 16, 0), 7, "hours") == local(2026, 2, 14, 16, 0)
    # One more working day skips the nine-day holiday to Tue 24 Feb.
    assert clock.add(local(2026, 2, 13, 16, 0), 2, "days") == local(2026, 2, 24, 16, 0)


def test_deadline_is_earliest_instant_and_zero_amount_moves_to_next_working_instant(clock):
    assert clock.add(local(2026, 3, 2, 9, 0), 3, "hours") == local(2026, 3, 2, 12, 0)
    assert clock.add(local(2026, 3, 2, 7, 0), 1, "days") == local(2026, 3, 2, 17, 30)
    assert clock.add(local(2026, 3, 2, 12, 0), 0, "hours") == local(2026, 3, 2, 13, 30)
    assert clock.add(local(2026, 3, 2, 10, 15, 30), 0, "hours") == local(2026, 3, 2, 10, 15, 30)
    assert clock.add(local(2026, 3, 6, 17, 30), 0, "hours") == local(2026, 3, 9, 9, 0)  # Fri→Mon
    assert clock.add(local(2026, 3, 2, 11, 0), 1, "days") == local(2026, 3, 3, 11, 0)


@pytest.mark.parametrize(
    ("name", "year"),
    [
        ("Spring Festival", 2026),
        ("Labour Day", 2026),
        ("National Day", 2026),
        ("Mid-autumn Festival", 2026),
        ("National Day", 2025),
    ],
)
def test_deadlines_around_holiday_weeks_match_minute_count(clock, minutes, name, year):
    off = holiday_days(name, year)
    assert off, f"package has no days off for {name} {year}"
    rng = np.random.default_rng(len(off) + year)
    first = off[0] - dt.timedelta(days=4)
    days = [first + dt.timedelta(days=i) for i in range((off[-1] - first).days + 3)]
    for day in days:
        for hour, minute in PROBE_TIMES:
            start = dt.datetime.combine(day, dt.time(hour, minute), tzinfo=SH)
            for amount in rng.choice(AMOUNTS_H, 2, replace=False):
                expected = minutes.add_minutes(start, round(amount * 60))
                assert clock.add(start, amount, "hours") == expected, (start, amount)
                assert clock.add(start, amount / 7, "days") == expected, (start, amount)


def test_random_starts_2025_2026_match_minute_count(clock, minutes):
    rng = np.random.default_rng(7)
    span = (local(2026, 12, 10) - local(2025, 1, 1)) // dt.timedelta(minutes=1)
    starts = [local(2025, 1, 1) + dt.timedelta(minutes=int(m)) for m in rng.integers(0, span, 300)]
    amounts = rng.integers(0, 7 * 60 * 6, 300)  # whole minutes, up to 6 working days
    amounts[:30] = 0
    got = clock.add(
        np.array([s.astimezone(UTC).replace(tzinfo=None) for s in starts], dtype="datetime64[us]"),
        amounts / 60,
        "hours",
    )
    for start, amount, deadline in zip(starts, amounts, got, strict=True):
        expected = minutes.add_minutes(start, int(amount))
        assert deadline == np.datetime64(expected.astimezone(UTC).replace(tzinfo=None), "us")


def test_starts_on_weekends_and_nights_count_from_next_period(clock, minutes):
    saturday = dt.date(2026, 3, 7)  # an ordinary weekend, checked against the package
    assert not chinese_calendar.is_workday(saturday)
    assert not chinese_calendar.is_workday(saturday + dt.timedelta(days=1))
    for start in [local(2026, 3, 7, 10, 0), local(2026, 3, 8, 23, 59), local(2026, 3, 9, 3, 0)]:
        assert clock.add(start, 0, "hours") == local(2026, 3, 9, 9, 0)
        assert clock.add(start, 1.25, "hours") == minutes.add_minutes(start, 75)


def test_vectorised_result_equals_scalar_result_for_10k_random_cases(clock):
    rng = np.random.default_rng(11)
    n = 10_000
    base = np.datetime64("2025-01-01T00:00:00", "us")
    starts = base + rng.integers(0, 2 * 366 * 86_400 * 10**6, n).astype("timedelta64[us]")
    amounts = np.round(rng.exponential(20.0, n), 6)
    amounts[::17] = 0
    units = ["hours", "days"]
    for unit in units:
        vector = clock.add(starts, amounts, unit)
        assert vector.dtype == np.dtype("datetime64[us]")
        for t, amount, deadline in zip(starts[:5000], amounts[:5000], vector[:5000], strict=True):
            start = dt.datetime.fromisoformat(str(t)).replace(tzinfo=UTC)
            scalar = clock.add(start, float(amount), unit)
            assert scalar.tzinfo == SH
            assert np.datetime64(scalar.astimezone(UTC).replace(tzinfo=None), "us") == deadline


def test_working_hours_between_matches_minute_count_and_is_signed(clock, minutes):
    rng = np.random.default_rng(3)
    span = (local(2026, 11, 1) - local(2025, 12, 20)) // dt.timedelta(minutes=1)
    for m in rng.integers(0, span, 40):
        a = local(2025, 12, 20) + dt.timedelta(minutes=int(m))
        b = a + dt.timedelta(minutes=int(rng.integers(0, 20 * 1440)))
        assert clock.working_hours_between(a, b) == pytest.approx(minutes.hours_between(a, b))
        assert clock.working_hours_between(b, a) == pytest.approx(-minutes.hours_between(a, b))
    # Whole Spring Festival fortnight: working days read from the package, 7 h each.
    a, b = local(2026, 2, 9), local(2026, 3, 2)
    workdays = sum(
        chinese_calendar.is_workday(dt.date(2026, 2, 9) + dt.timedelta(days=i)) for i in range(21)
    )
    assert clock.working_hours_between(a, b) == 7 * workdays


def test_add_then_between_gives_back_the_amount(clock):
    rng = np.random.default_rng(5)
    offsets = rng.integers(0, 400 * 86_400 * 10**6, 2000).astype("timedelta64[us]")
    starts = np.datetime64("2025-06-01", "us") + offsets
    amounts = np.round(rng.uniform(0.01, 80, 2000), 3)
    deadlines = clock.add(starts, amounts, "hours")
    np.testing.assert_allclose(clock.working_hours_between(starts, deadlines), amounts, atol=1e-9)


def test_is_working_time_matches_minute_definition_at_boundaries(clock, minutes):
    day = dt.date(2026, 2, 14)  # make-up Saturday
    for hour, minute in PROBE_TIMES + [(13, 29), (16, 0)]:
        t = dt.datetime.combine(day, dt.time(hour, minute), tzinfo=SH)
        assert clock.is_working_time(t) == minutes.working(minutes.minute_of(t)), t
    assert clock.is_working_time(local(2026, 2, 16, 10, 0)) is False  # Spring Festival Monday
    flags = clock.is_working_time(np.array(["2026-02-14T02:00", "2026-02-14T04:00"], "M8[us]"))
    assert flags.tolist() == [True, False]  # 10:00 and 12:00 in Shanghai


def test_2027_falls_back_to_monday_to_friday(clock):
    with pytest.raises(NotImplementedError):
        chinese_calendar.is_workday(dt.date(2027, 1, 4))
    assert 2027 not in clock.covered_years and clock.covered_years == OFFICIAL_YEARS
    assert not clock.covers(dt.date(2027, 3, 1)) and clock.covers(dt.date(2026, 3, 1))
    new_year_in_shanghai = local(2027, 1, 1, 1, 0).astimezone(UTC)  # still 2026 in UTC
    assert not clock.covers(new_year_in_shanghai) and clock.is_workday(new_year_in_shanghai)
    weekdays = MinuteClock(is_workday=weekday_rule)
    rng = np.random.default_rng(9)
    for m in rng.integers(0, 330 * 1440, 60):
        start = local(2027, 1, 1) + dt.timedelta(minutes=int(m))
        amount = int(rng.integers(0, 5 * 420))
        assert clock.add(start, amount / 60, "hours") == weekdays.add_minutes(start, amount)
    # Crossing from official 2026 data into the fallback year: Thu 31 Dec 2026 is a workday.
    assert chinese_calendar.is_workday(dt.date(2026, 12, 31))
    assert clock.add(local(2026, 12, 31, 12, 0), 5, "days") == local(2027, 1, 7, 12, 0)


def test_local_extra_holidays_and_workdays_take_precedence(minutes):
    extra_off = dt.date(2026, 3, 10)  # an ordinary Tuesday
    extra_on = dt.date(2026, 3, 14)  # an ordinary Saturday
    assert chinese_calendar.is_workday(extra_off) and not chinese_calendar.is_workday(extra_on)
    city = WorkClock(extra_holidays=[extra_off], extra_workdays=[extra_on])
    assert city.covers(dt.date(2030, 1, 1)) is False and city.covers(dt.date(2026, 3, 10))

    def city_rule(day: dt.date) -> bool:
        return day == extra_on or (day != extra_off and chinese_calendar.is_workday(day))

    reference = MinuteClock(is_workday=city_rule)
    for day in range(8, 17):
        for hour, minute in PROBE_TIMES:
            start = local(2026, 3, day, hour, minute)
            for amount in (0, 90, 7 * 60, 3 * 7 * 60):
                got = city.add(start, amount / 60, "hours")
                assert got == reference.add_minutes(start, amount), (start, amount)
    assert city.working_hours_between(local(2026, 3, 9), local(2026, 3, 16)) == 5 * 7


def test_custom_calendar_in_a_daylight_saving_zone_counts_real_hours():
    berlin = ZoneInfo("Europe/Berlin")
    clock = WorkClock(tz="Europe/Berlin", is_workday=weekday_rule)
    # Reference: step UTC minutes and ask the zone for each minute's local wall-clock time.
    start_utc = dt.datetime(2026, 3, 26, 0, 0, tzinfo=UTC)  # DST begins Sun 29 Mar 2026
    flags = []
    for m in range(10 * 1440):
        t = (start_utc + dt.timedelta(minutes=m)).astimezone(berlin)
        of_day = t.hour * 60 + t.minute
        flags.append(weekday_rule(t.date()) and any(s <= of_day < e for s, e in PERIODS_MIN))
    rng = np.random.default_rng(2)
    for m in rng.integers(0, 3 * 1440, 40):
        amount = int(rng.integers(1, 3 * 420))
        working = np.flatnonzero(flags[m:])
        expected = start_utc + dt.timedelta(minutes=int(m + working[amount - 1] + 1))
        start = start_utc + dt.timedelta(minutes=int(m))
        deadline = clock.add(start, amount / 60, "hours")
        assert deadline == expected and deadline.tzinfo == berlin


def test_utc_input_gives_the_same_instant_and_answers_in_clock_zone(clock):
    shanghai = local(2026, 9, 30, 16, 0)
    utc = shanghai.astimezone(UTC)
    assert utc.hour == 8
    by_utc, by_local = clock.add(utc, 2, "hours"), clock.add(shanghai, 2, "hours")
    assert by_utc == by_local and by_utc.utcoffset() == dt.timedelta(hours=8)
    # 1.5 h left on 30 Sep, then National Day week (read from the package) is skipped.
    off = holiday_days("National Day", 2026)
    next_workday = off[-1] + dt.timedelta(days=1)
    assert chinese_calendar.is_workday(next_workday)
    assert by_utc == dt.datetime.combine(next_workday, dt.time(9, 30), tzinfo=SH)
    as_numpy = clock.add(np.datetime64("2026-09-30T08:00"), 2, "hours")
    assert as_numpy == np.datetime64(by_utc.astimezone(UTC).replace(tzinfo=None), "us")


def test_series_keeps_index_and_name_and_nat(clock):
    starts = pd.Series(
        pd.to_datetime(["2026-02-13 08:00", None, "2026-05-08 01:00"]).tz_localize("UTC"),
        index=[10, 20, 30],
        name="dispatched",
    )
    deadlines = clock.add(starts, [7, 7, 0], "hours")
    assert list(deadlines.index) == [10, 20, 30] and deadlines.name == "dispatched"
    assert str(deadlines.dt.tz) == "Asia/Shanghai"
    assert deadlines[10] == pd.Timestamp("2026-02-14 16:00", tz="Asia/Shanghai")
    assert pd.isna(deadlines[20])
    assert deadlines[30] == pd.Timestamp("2026-05-08 09:00", tz="Asia/Shanghai")  # Fri 8 May
    hours = clock.working_hours_between(starts, deadlines)
    assert hours[10] == 7 and np.isnan(hours[20]) and list(hours.index) == [10, 20, 30]
    # 16:00 on Fri 13 Feb and 09:00 on Fri 8 May in Shanghai are working time; NaT is not.
    assert clock.is_working_time(starts).tolist() == [True, False, True]


def test_scalar_start_with_array_amount_gives_utc_array(clock):
    got = clock.add(local(2026, 3, 2, 9, 0), np.array([0, 3, 7]), "hours")
    expected = np.array(["2026-03-02T01:00", "2026-03-02T04:00", "2026-03-02T09:30"], "M8[us]")
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda c: c.add(dt.datetime(2026, 3, 2, 9), 1, "hours"), "time zone"),
        (lambda c: c.add(pd.Series(pd.to_datetime(["2026-03-02"])), 1, "hours"), "time zone"),
        (lambda c: c.is_working_time(dt.datetime(2026, 3, 2, 9)), "time zone"),
        (lambda c: c.working_hours_between(local(2026, 3, 2), dt.datetime(2026, 3, 3)), "zone"),
        (lambda c: c.add(local(2026, 3, 2), 1, "weeks"), "unknown unit"),
        (lambda c: c.add(local(2026, 3, 2), -1, "hours"), ">= 0"),
        (lambda c: c.add(local(2026, 3, 2), [1, float("nan")], "hours"), "finite"),
        (lambda c: c.add(local(2026, 3, 2), "two", "hours"), "number"),
        (lambda c: c.add(dt.date(2026, 3, 2), 1, "hours"), "unsupported type"),
        (lambda c: c.add(np.array(["1800-01-01"], "M8[us]"), 1, "hours"), "between 1900"),
        (lambda c: c.add(np.array(["2026-03-02"] * 3, "M8[us]"), [1, 2], "hours"), "shapes"),
        (lambda c: c.add(local(2026, 3, 2), 1e12, "hours"), "too large"),
        (lambda c: c.add(local(2026, 3, 2), 1e6, "days"), "after 2200"),
    ],
)
def test_bad_input_raises_value_error_naming_the_fix(clock, call, message):
    with pytest.raises(ValueError, match=message):
        call(clock)


def test_bad_configuration_raises_value_error():
    with pytest.raises(ValueError, match="unknown time zone"):
        WorkClock(tz="Asia/Peking")
    with pytest.raises(ValueError, match="both extra holidays and extra workdays"):
        WorkClock(extra_holidays=[dt.date(2026, 3, 2)], extra_workdays=[dt.date(2026, 3, 2)])
    with pytest.raises(ValueError, match="must start before"):
        WorkingHours(((dt.time(12), dt.time(9)),))
    with pytest.raises(ValueError, match="overlaps"):
        WorkingHours(((dt.time(9), dt.time(12)), (dt.time(11), dt.time(17))))
    with pytest.raises(ValueError, match="at least one"):
        WorkingHours(())
    with pytest.raises(ValueError, match="no working"):
        WorkClock(is_workday=lambda day: False).add(local(2026, 3, 2), 1, "hours")
