"""Assessment periods: each form's local first and last day and its bounds in local time."""

from __future__ import annotations

from datetime import date

import pytest

from service.assessment.periods import parse_period
from service.errors import InvalidInput

TZ = "Asia/Shanghai"


@pytest.mark.parametrize(
    ("text", "kind", "first", "last"),
    [
        ("2026-11-29", "day", date(2026, 11, 29), date(2026, 11, 29)),
        ("2026-W47", "week", date(2026, 11, 16), date(2026, 11, 22)),
        ("2027-W01", "week", date(2027, 1, 4), date(2027, 1, 10)),
        ("2026-11", "month", date(2026, 11, 1), date(2026, 11, 30)),
        ("2026-12", "month", date(2026, 12, 1), date(2026, 12, 31)),
        ("2024-02", "month", date(2024, 2, 1), date(2024, 2, 29)),
        ("2026-Q4", "quarter", date(2026, 10, 1), date(2026, 12, 31)),
        ("2026-Q1", "quarter", date(2026, 1, 1), date(2026, 3, 31)),
        ("2026", "year", date(2026, 1, 1), date(2026, 12, 31)),
        (" 2026-11-01..2026-11-15 ", "custom", date(2026, 11, 1), date(2026, 11, 15)),
    ],
)
def test_forms(text: str, kind: str, first: date, last: date) -> None:
    p = parse_period(text, TZ)
    assert (p.kind, p.first_day, p.last_day) == (kind, first, last)
    # half-open, between local midnights
    assert p.start.isoformat() == f"{first.isoformat()}T00:00:00+08:00"
    assert (p.end.date() - last).days == 1 and p.end.hour == 0


@pytest.mark.parametrize(
    "text",
    [
        "",
        "2026-13",
        "2026-00",
        "2026-W00",
        "2026-W54",
        "2026-Q5",
        "2026-02-30",
        "26-11",
        "2026-11-15..2026-11-01",
        "2020-01-01..2026-01-01",
        "november",
        "2026-11..2026-12",
    ],
)
def test_bad_periods_name_the_field(text: str) -> None:
    with pytest.raises(InvalidInput) as err:
        parse_period(text, TZ)
    assert err.value.field == "period"
