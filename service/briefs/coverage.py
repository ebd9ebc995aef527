"""Patrol coverage of a week or a month for the documents, from the coverage runs of its days.

``service.patrol`` stores coverage per hour, day and week. A brief of a longer period says:

* **covered** (巡查到): a unit grid is covered in the period when it was visited on any of its
  days — for a week the week's own run says so (its union of tracks), for a month the union of
  its day runs does (the same answer: a visit is a visit on some day);
* **blind** (盲区): a unit grid visited on none of the period's days;
* **daily rate** (网格日均巡查率): over the unit grids, the share of the period's days (up to
  today) on which each was visited — how steadily, not only whether, a grid was patrolled;
* the **area share**: the week run's share of each grid seen (its union over the week); a
  month has no run of its own — the union of a month of tracks is not cheap to compute — so
  its share is the mean of the grid's daily shares (日均覆盖率), said so in the documents.

The functions here are pure: they take the rows of the day runs
(``CoverageService.grid_rows``) and give rows shaped like them.
"""

from __future__ import annotations

from typing import Any

DayRows = list[dict[str, Any]]


def union_of_days(days: list[DayRows]) -> list[dict[str, Any]]:
    """One row per unit grid seen in any day's run, by code: ``code, name`` (the latest),
    ``visits`` (their sum), ``covered_share`` (the mean of the daily shares over the days the
    grid was measured), ``days`` (days measured) and ``days_visited``."""
    out: dict[str, dict[str, Any]] = {}
    for rows in days:
        for r in rows:
            row = out.setdefault(
                r["code"],
                {"code": r["code"], "visits": 0, "share_sum": 0.0, "days": 0, "days_visited": 0},
            )
            row["name"] = r["name"]
            row["visits"] += int(r["visits"] or 0)
            row["share_sum"] += float(r["covered_share"] or 0.0)
            row["days"] += 1
            row["days_visited"] += 1 if r["visits"] else 0
    return [
        {
            "code": row["code"],
            "name": row["name"],
            "visits": row["visits"],
            "covered_share": round(row["share_sum"] / row["days"], 4),
            "days": row["days"],
            "days_visited": row["days_visited"],
        }
        for _, row in sorted(out.items())
    ]


def daily_rate(days: list[DayRows], codes: set[str]) -> tuple[int, float | None]:
    """(days measured, the mean over the grids ``codes`` of the share of those days each was
    visited on); ``None`` for no days or no grids."""
    rows = [r for r in union_of_days(days) if r["code"] in codes]
    if not days or not rows:
        return len(days), None
    shares = [r["days_visited"] / r["days"] for r in rows]
    return len(days), round(sum(shares) / len(shares), 4)
