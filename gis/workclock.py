"""Working-time clock for case deadlines (处置时限) given in working hours or working days.

Chinese city-management cases are due a number of working hours or working days after they are
dispatched. Working time is the union of the daily working periods (by default 09:00-12:00 and
13:30-17:30 local time, 7 hours) on working days. Working days follow the official calendar of
the ``chinese_calendar`` package (public holidays and make-up working days, 调休), which covers
the years in :data:`OFFICIAL_YEARS`; for other years the clock falls back to Monday-Friday (see
:meth:`WorkClock.covers`). A city's own days off or extra working days are local overrides.

The clock is vectorised: it lays every working period of the needed span out as a sorted array of
UTC intervals with the cumulative working time before each one, so that the working time W(t)
elapsed since the start of the table is one ``np.searchsorted`` away, and a deadline is the
inverse W^-1(W(start) + amount), another ``np.searchsorted``. Times are handled as integer
microseconds since the Unix epoch (UTC), so results are exact to the microsecond.

Rules a user should know:

* A deadline is the earliest instant at which ``amount`` of working time has elapsed since
  ``start``: 3 hours from 09:00 is 12:00 of the same day (not 13:30), 1 working day from any
  time before 09:00 is 17:30 of the same working day.
* A start outside working time starts counting at the next working period.
* ``amount == 0`` gives the first working instant at or after ``start`` (``start`` itself when it
  is inside working time). Periods are half-open: 12:00 and 17:30 are not working instants.
* One working day is :attr:`WorkingHours.hours_per_day` working hours, so N working days later
  is the same working-time position N working days on.
* Working periods are local wall-clock times; on a daylight-saving change day a period lasts its
  real elapsed duration (irrelevant for Asia/Shanghai, which has no DST).
* Instants from 1900 to 2200 are supported.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import chinese_calendar
import numpy as np
import pandas as pd

UNITS: tuple[str, ...] = ("hours", "days")
Unit = Literal["hours", "days"]

OFFICIAL_YEARS: range = range(
    min(day.year for day in chinese_calendar.holidays),
    max(day.year for day in chinese_calendar.holidays) + 1,
)
"""Years for which ``chinese_calendar`` has the official holiday arrangement (2004-2026 in 1.11)."""

_MIN_YEAR, _MAX_YEAR = 1900, 2200
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_ONE_US = dt.timedelta(microseconds=1)
_US_PER_HOUR = 3_600_000_000
_NAT = np.iinfo(np.int64).min  # the int64 view of NaT
_MIN_US = (dt.datetime(_MIN_YEAR, 1, 2, tzinfo=dt.UTC) - _EPOCH) // _ONE_US
_MAX_US = (dt.datetime(_MAX_YEAR, 12, 30, tzinfo=dt.UTC) - _EPOCH) // _ONE_US
_INPUT_HINT = (
    "give an aware datetime, a numpy datetime64 array (read as UTC) or a pandas Series of "
    "tz-aware timestamps"
)


def _check_periods(periods: tuple[tuple[dt.time, dt.time], ...]) -> None:
    if not periods:
        raise ValueError("WorkingHours needs at least one (start, end) period")
    previous_end: dt.time | None = None
    for start, end in periods:
        if not (isinstance(start, dt.time) and isinstance(end, dt.time)):
            raise ValueError("each working period must be a pair of datetime.time")
        if start.tzinfo is not None or end.tzinfo is not None:
            raise ValueError("working periods are local wall-clock times; drop the tzinfo")
        if start >= end:
            raise ValueError(
                f"working period {start}-{end} must start before it ends (periods cannot cross "
                "midnight)"
            )
        if previous_end is not None and start < previous_end:
            raise ValueError(
                f"working period starting {start} overlaps or precedes the one ending "
                f"{previous_end}; give periods sorted and non-overlapping"
            )
        previous_end = end


def _time_us(time: dt.time) -> int:
    return ((time.hour * 60 + time.minute) * 60 + time.second) * 1_000_000 + time.microsecond


@dataclass(frozen=True)
class WorkingHours:
    """The daily working periods, in local wall-clock time.

    Parameters
    ----------
    periods : tuple of (datetime.time, datetime.time)
        Half-open ``[start, end)`` periods within one day, sorted and non-overlapping (touching
        is allowed). The default is 09:00-12:00 and 13:30-17:30, 7 working hours a day.

    Raises
    ------
    ValueError
        If there is no period, a period has ``start >= end`` or carries a tzinfo, or periods are
        unsorted or overlap.
    """

    periods: tuple[tuple[dt.time, dt.time], ...] = (
        (dt.time(9, 0), dt.time(12, 0)),
        (dt.time(13, 30), dt.time(17, 30)),
    )

    def __post_init__(self) -> None:
        periods = tuple((start, end) for start, end in self.periods)
        _check_periods(periods)
        object.__setattr__(self, "periods", periods)

    @property
    def hours_per_day(self) -> float:
        """Working hours in one working day (the length of a ``"days"`` unit)."""
        return self._us_per_day / _US_PER_HOUR

    @property
    def _us_per_day(self) -> int:
        return sum(_time_us(end) - _time_us(start) for start, end in self.periods)


DEFAULT_HOURS = WorkingHours()


@dataclass(frozen=True)
class _Table:
    """Working intervals of the local days ``first..last`` as UTC microseconds."""

    first: dt.date
    last: dt.date
    starts: np.ndarray  # sorted, int64
    ends: np.ndarray
    cum: np.ndarray  # working time before each interval, counted from ``first``
    cum_end: np.ndarray  # working time at each interval's end

    @property
    def total(self) -> int:
        return int(self.cum_end[-1]) if len(self.cum_end) else 0

    def covers(self, first: dt.date, last: dt.date) -> bool:
        return self.first <= first and last <= self.last

    def working_us(self, t: np.ndarray) -> np.ndarray:
        """W(t): working microseconds from the table start to each instant ``t``."""
        if len(self.starts) == 0:
            return np.zeros(t.shape, dtype=np.int64)
        k = np.searchsorted(self.starts, t, side="right") - 1
        inside = np.maximum(k, 0)
        elapsed = np.minimum(t - self.starts[inside], self.ends[inside] - self.starts[inside])
        return np.where(k >= 0, self.cum[inside] + elapsed, 0)


@dataclass(frozen=True)
class _Instants:
    """Instants read from user input: int64 UTC microseconds plus how to give them back."""

    us: np.ndarray
    kind: Literal["scalar", "numpy", "series"]
    index: Any = None
    name: Any = None


class WorkClock:
    """Working-time clock on the official Chinese working-day calendar.

    Parameters
    ----------
    tz : str, default "Asia/Shanghai"
        IANA time zone of the working periods; results for aware scalars are given in it.
    hours : WorkingHours, default 09:00-12:00 and 13:30-17:30
        The daily working periods.
    is_workday : callable, optional
        ``is_workday(date) -> bool``. Default: ``chinese_calendar.is_workday`` for the years in
        :data:`OFFICIAL_YEARS` and Monday-Friday for any other year (no error for 2027 dates;
        check :meth:`covers`). A callable given here is used for every day as is.
    extra_holidays, extra_workdays : iterable of datetime.date
        A city's own days off / extra working days; they take precedence over ``is_workday``.

    Raises
    ------
    ValueError
        If the time zone is unknown or a day is both an extra holiday and an extra workday.

    Examples
    --------
    >>> clock = WorkClock()
    >>> start = dt.datetime(2026, 2, 13, 16, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
    >>> clock.add(start, 7, "hours").isoformat()  # Sat 14 Feb 2026 is a make-up working day
    '2026-02-14T16:00:00+08:00'
    """

    def __init__(
        self,
        tz: str = "Asia/Shanghai",
        hours: WorkingHours = DEFAULT_HOURS,
        is_workday: Callable[[dt.date], bool] | None = None,
        extra_holidays: Iterable[dt.date] = (),
        extra_workdays: Iterable[dt.date] = (),
    ) -> None:
        self.tz = tz
        self.hours = hours
        self._zone = _zone(tz)
        self._calendar = is_workday
        self.extra_holidays = frozenset(_check_day(d, "extra_holidays") for d in extra_holidays)
        self.extra_workdays = frozenset(_check_day(d, "extra_workdays") for d in extra_workdays)
        both = self.extra_holidays & self.extra_workdays
        if both:
            raise ValueError(
                f"days {sorted(both)} are both extra holidays and extra workdays; keep each day "
                "in one list only"
            )
        self._table: _Table | None = None

    @property
    def covered_years(self) -> range:
        """Years whose working days come from the calendar source, not the Mon-Fri fallback.

        Returns
        -------
        range
            :data:`OFFICIAL_YEARS` with the default calendar; every supported year (1900-2200)
            when a custom ``is_workday`` was given.
        """
        if self._calendar is None:
            return OFFICIAL_YEARS
        return range(_MIN_YEAR, _MAX_YEAR + 1)

    def covers(self, day: dt.date) -> bool:
        """Tell whether ``day``'s working status is known rather than the Mon-Fri fallback.

        Parameters
        ----------
        day : datetime.date or aware datetime.datetime
            A local date, or an instant whose local date (in the clock's zone) is meant.

        Returns
        -------
        bool
            True if ``day`` is a local override or its year is in :attr:`covered_years`.
        """
        day = self._local_day(day)
        overridden = day in self.extra_holidays or day in self.extra_workdays
        return overridden or day.year in self.covered_years

    def is_workday(self, day: dt.date) -> bool:
        """Tell whether ``day`` is a working day (overrides, then calendar, then Mon-Fri).

        Parameters
        ----------
        day : datetime.date or aware datetime.datetime
            A local date, or an instant whose local date (in the clock's zone) is meant.

        Returns
        -------
        bool
            True on working days.
        """
        return self._workday(self._local_day(day))

    def add(self, start: Any, amount: Any, unit: Unit) -> Any:
        """Deadline after ``amount`` working hours or days from ``start``.

        Parameters
        ----------
        start : aware datetime, numpy datetime64 array or pandas Series
            Start instant(s). numpy datetime64 values are read as UTC; a Series must hold
            tz-aware timestamps. NaT gives NaT.
        amount : float or array_like of float
            Working time to add, ``>= 0``; broadcast against ``start``.
        unit : {"hours", "days"}
            ``"days"`` counts working days of :attr:`WorkingHours.hours_per_day` hours.

        Returns
        -------
        datetime or numpy.ndarray or pandas.Series
            The earliest instant at which ``amount`` working time has elapsed since ``start``
            (for ``amount == 0``: the first working instant at or after ``start``), to the
            microsecond: an aware datetime in the clock zone if both inputs are scalars, a
            tz-aware Series in the clock zone (index of ``start``) if ``start`` is a Series,
            else a ``datetime64[us]`` array in UTC.

        Raises
        ------
        ValueError
            For naive datetimes, an unknown unit, negative or non-finite amounts, shapes that do
            not broadcast, or instants outside 1900-2200.
        """
        instants = _read_instants(start, "start")
        amount_us = _read_amount(amount, unit, self.hours)
        scalar = instants.kind == "scalar" and amount_us.ndim == 0
        t, amount_us = _broadcast(instants.us, amount_us)
        deadline = np.full(t.shape, _NAT, dtype=np.int64)
        valid = t != _NAT
        deadline[valid] = self._deadline_us(t[valid], amount_us[valid])
        kind = "scalar" if scalar else "numpy" if instants.kind == "scalar" else instants.kind
        return self._give_instants(_Instants(deadline, kind, instants.index, instants.name))

    def working_hours_between(self, a: Any, b: Any) -> Any:
        """Working hours from ``a`` to ``b`` (negative if ``b`` is before ``a``).

        Parameters
        ----------
        a, b : aware datetime, numpy datetime64 array or pandas Series
            Instants as for :meth:`add`; broadcast against each other. NaT gives NaN.

        Returns
        -------
        float or numpy.ndarray or pandas.Series
            A float if both are scalars, a Series (index of the first Series) if either is a
            Series, else a float array.

        Raises
        ------
        ValueError
            For naive datetimes, shapes that do not broadcast, or instants outside 1900-2200.
        """
        first, second = _read_instants(a, "a"), _read_instants(b, "b")
        ta, tb = _broadcast(first.us, second.us)
        hours = np.full(ta.shape, np.nan)
        valid = (ta != _NAT) & (tb != _NAT)
        if valid.any():
            table = self._table_for(np.concatenate([ta[valid], tb[valid]]))
            elapsed = table.working_us(tb[valid]) - table.working_us(ta[valid])
            hours[valid] = elapsed / _US_PER_HOUR
        return _give_values(hours, first, second)

    def is_working_time(self, t: Any) -> Any:
        """Tell whether each instant lies inside a working period of a working day.

        Parameters
        ----------
        t : aware datetime, numpy datetime64 array or pandas Series
            Instants as for :meth:`add`. NaT gives False.

        Returns
        -------
        bool or numpy.ndarray or pandas.Series
            Same shape as ``t``; periods are half-open, so 12:00 and 17:30 are not working time.

        Raises
        ------
        ValueError
            For naive datetimes or instants outside 1900-2200.
        """
        instants = _read_instants(t, "t")
        working = np.zeros(instants.us.shape, dtype=bool)
        valid = instants.us != _NAT
        table = self._table_for(instants.us[valid]) if valid.any() else None
        if table is not None and len(table.starts):
            times = instants.us[valid]
            k = np.maximum(np.searchsorted(table.starts, times, side="right") - 1, 0)
            working[valid] = (times >= table.starts[k]) & (times < table.ends[k])
        return _give_values(working, instants)

    # -- internals ---------------------------------------------------------------------------

    def _deadline_us(self, t: np.ndarray, amount_us: np.ndarray) -> np.ndarray:
        if t.size == 0:
            return t
        table = self._table_for(t)
        target = table.working_us(t) + amount_us
        # Extending only forward keeps the cumulative times, so W(t) above stays valid. The
        # strict inequality leaves a next interval for amount 0 at the end of the table.
        while int(target.max()) >= table.total:
            table = self._extend_forward(table, int(target.max()))
        k = np.searchsorted(table.cum_end, target, side="left")
        # Amount 0 landing on a period end means "outside working time": move to the next start.
        at_end = (amount_us == 0) & (table.cum_end[k] == target)
        k = k + at_end
        return table.starts[k] + (target - table.cum[k])

    def _table_for(self, t: np.ndarray) -> _Table:
        lo, hi = int(t.min()), int(t.max())
        if lo < _MIN_US or hi > _MAX_US:
            raise ValueError(
                f"instants must lie between {_MIN_YEAR} and {_MAX_YEAR}; check for unparsed or "
                "sentinel dates"
            )
        # One day of margin so that W(t) counts from a local midnight before every instant.
        first = self._local_day(_from_us(lo)) - dt.timedelta(days=1)
        last = self._local_day(_from_us(hi)) + dt.timedelta(days=1)
        table = self._table
        if table is not None and table.covers(first, last):
            return table
        if table is not None:
            first, last = min(first, table.first), max(last, table.last)
        # Whole years, so that a series of nearby calls builds the table once.
        self._table = self._build(dt.date(first.year, 1, 1), dt.date(last.year, 12, 31))
        return self._table

    def _extend_forward(self, table: _Table, target: int) -> _Table:
        end_of_range = dt.date(_MAX_YEAR, 12, 31)
        if table.last >= end_of_range:
            raise ValueError(
                f"the deadline falls after {_MAX_YEAR} (or the is_workday calendar has no working "
                "days); check the amount and the calendar"
            )
        missing_days = (target - table.total) / self.hours._us_per_day
        # Twice the calendar days of the missing working days covers weekends and holiday weeks;
        # growing by at least the current span keeps the number of rebuilds logarithmic.
        grow = max(math.ceil(2 * missing_days) + 31, (table.last - table.first).days)
        last = table.last + dt.timedelta(days=min(grow, (end_of_range - table.last).days))
        self._table = self._build(table.first, dt.date(last.year, 12, 31))
        return self._table

    def _build(self, first: dt.date, last: dt.date) -> _Table:
        starts: list[int] = []
        ends: list[int] = []
        day = first
        while day <= last:
            if self._workday(day):
                for period_start, period_end in self.hours.periods:
                    start, end = self._local_us(day, period_start), self._local_us(day, period_end)
                    # A DST jump can shift a wall-clock period; keep intervals ordered and apart.
                    start = max(start, ends[-1]) if ends else start
                    if end > start:
                        starts.append(start)
                        ends.append(end)
            day += dt.timedelta(days=1)
        starts_arr = np.asarray(starts, dtype=np.int64)
        ends_arr = np.asarray(ends, dtype=np.int64)
        cum_end = np.cumsum(ends_arr - starts_arr)
        cum = cum_end - (ends_arr - starts_arr)
        return _Table(first, last, starts_arr, ends_arr, cum, cum_end)

    def _workday(self, day: dt.date) -> bool:
        if day in self.extra_holidays:
            return False
        if day in self.extra_workdays:
            return True
        if self._calendar is not None:
            return bool(self._calendar(day))
        if day.year in OFFICIAL_YEARS:
            return bool(chinese_calendar.is_workday(day))
        return day.weekday() < 5

    def _local_us(self, day: dt.date, time: dt.time) -> int:
        return (dt.datetime.combine(day, time, tzinfo=self._zone) - _EPOCH) // _ONE_US

    def _local_day(self, day: dt.date) -> dt.date:
        if isinstance(day, dt.datetime):
            if day.tzinfo is None or day.utcoffset() is None:
                raise ValueError("give a time zone: the datetime is naive; pass an aware datetime")
            return day.astimezone(self._zone).date()
        if isinstance(day, dt.date):
            return day
        raise ValueError(f"expected a datetime.date, got {type(day).__name__}")

    def _give_instants(self, instants: _Instants) -> Any:
        if instants.kind == "scalar":
            return _from_us(int(instants.us)).astimezone(self._zone)
        values = instants.us.view("datetime64[us]")
        if instants.kind == "series":
            series = pd.Series(values, index=instants.index, name=instants.name)
            return series.dt.tz_localize("UTC").dt.tz_convert(self.tz)
        return values[()] if values.ndim == 0 else values


def _zone(tz: str) -> ZoneInfo:
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise ValueError(
            f"unknown time zone {tz!r}; give an IANA name such as 'Asia/Shanghai'"
        ) from error


def _check_day(day: Any, name: str) -> dt.date:
    if isinstance(day, dt.datetime) or not isinstance(day, dt.date):
        raise ValueError(f"{name} must hold datetime.date values, got {day!r}")
    return day


def _from_us(us: int) -> dt.datetime:
    return _EPOCH + dt.timedelta(microseconds=us)


def _read_instants(value: Any, name: str) -> _Instants:
    if isinstance(value, pd.Series):
        if not isinstance(value.dtype, pd.DatetimeTZDtype):
            raise ValueError(
                f"give a time zone: {name} is a Series of dtype {value.dtype}; use "
                "Series.dt.tz_localize(...) to make its timestamps tz-aware"
            )
        utc = value.dt.tz_convert(None).to_numpy().astype("datetime64[us]")
        return _Instants(utc.view(np.int64), "series", value.index, value.name)
    if isinstance(value, dt.datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(
                f"give a time zone: {name} is a naive datetime; pass e.g. "
                "datetime(..., tzinfo=ZoneInfo('Asia/Shanghai'))"
            )
        return _Instants(np.asarray((value - _EPOCH) // _ONE_US, dtype=np.int64), "scalar")
    if isinstance(value, np.datetime64 | np.ndarray) and np.asarray(value).dtype.kind == "M":
        utc = np.asarray(value).astype("datetime64[us]")
        return _Instants(utc.view(np.int64), "numpy")
    raise ValueError(f"{name} has unsupported type {type(value).__name__}; {_INPUT_HINT}")


def _read_amount(amount: Any, unit: str, hours: WorkingHours) -> np.ndarray:
    if unit not in UNITS:
        raise ValueError(f"unknown unit {unit!r}; use one of {UNITS}")
    try:
        values = np.asarray(amount, dtype=float)
    except (TypeError, ValueError) as error:
        raise ValueError(
            f"amount must be a number or an array of numbers, got {amount!r}"
        ) from error
    if not np.isfinite(values).all():
        raise ValueError("amount must be finite; drop or fill NaN/inf amounts first")
    if (values < 0).any():
        raise ValueError("amount must be >= 0; a deadline cannot lie before its start")
    per_unit = _US_PER_HOUR if unit == "hours" else hours._us_per_day
    amount_us = np.rint(values * per_unit)
    if (amount_us > _MAX_US - _MIN_US).any():
        raise ValueError(f"amount is too large: the deadline would fall after {_MAX_YEAR}")
    return amount_us.astype(np.int64)


def _broadcast(first: np.ndarray, second: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    try:
        a, b = np.broadcast_arrays(first, second)
    except ValueError as error:
        raise ValueError(
            f"shapes {first.shape} and {second.shape} do not match; give arrays of equal length "
            "or a scalar"
        ) from error
    return a, b


def _give_values(values: np.ndarray, *inputs: _Instants) -> Any:
    series = [given for given in inputs if given.kind == "series"]
    if series:
        return pd.Series(values, index=series[0].index, name=series[0].name)
    if all(given.kind == "scalar" for given in inputs):
        return values.item()
    return values[()] if values.ndim == 0 else values
