"""The burn-down of a campaign: for each day, each target's value, the plan's expected value and
whether it is on track (the kinds are described in :mod:`service.campaigns.plan`).

Case targets read the campaign's tagged cases once per target, grouped by local report day and
local close day, and add the groups up per day; coverage targets read the stored weekly coverage
run of each week the days touch (computed on first read, see ``service.patrol.coverage``). Every
count keeps to the reader's scope (``service.accounts.scope.case_sql``), and a coverage target to
the hotspots touching the reader's grids.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import text
from sqlalchemy.orm import Session

from service.accounts.principal import Principal
from service.accounts.scope import case_sql
from service.campaigns.plan import Milestone, expected, on_track, planned_share
from service.db.models import Campaign
from service.errors import NotFound
from service.patrol.coverage import CoverageService
from service.settings import AppSettings

# registered: accepted as a case (not a bare report, not rejected, not folded into another)
REGISTERED = ("registered", "dispatched", "handling", "fed_back", "closed")
COUNTED = (*REGISTERED, "reported")

_CASE_GROUPS = """
SELECT (timezone(:tz, c.reported_at))::date AS reported_on,
       (timezone(:tz, c.closed_at))::date AS closed_on,
       count(*) AS n
FROM campaign_cases cc JOIN cases c ON c.city = cc.city AND c.id = cc.case_id
WHERE cc.city = :city AND cc.campaign_id = :campaign_id
  AND c.status = ANY(:statuses)
  AND (cardinality(CAST(:categories AS text[])) = 0 OR c.category_code = ANY(:categories))
  AND (NOT :recurring OR c.recurring_of IS NOT NULL)
  AND {scope}
GROUP BY 1, 2
"""

_HOTSPOT_MEAN = text(
    "SELECT avg(covered_share), count(covered_share) FROM hotspot_coverage "
    "WHERE city = :city AND run_id = :run_id AND hotspot_id = ANY(:ids)"
)


class Progress:
    """Target series of campaigns on one session."""

    def __init__(self, session: Session, settings: AppSettings, coverage: CoverageService) -> None:
        self.session = session
        self.settings = settings
        self.tz = settings.grids.timezone
        self.coverage = coverage

    def series(self, c: Campaign, days: list[date], by: Principal) -> list[dict[str, Any]]:
        """Each target of ``c`` with ``days``: ``[{date, value, expected, on_track, …counts}]``
        as ``by`` sees it."""
        milestones = [Milestone(date.fromisoformat(m["date"]), m["share"]) for m in c.milestones]
        out = []
        for t in c.targets:
            if t["kind"] == "hotspot_coverage":
                values = self._coverage(t["hotspot_ids"], days, by)
            else:
                values = self._cases(c, t, days, by)
            points = []
            for day, (value, counts) in zip(days, values, strict=True):
                share = planned_share(milestones, c.start_date, c.end_date, day)
                expect = expected(t["kind"], t["goal"], share)
                points.append(
                    {
                        "date": day,
                        "value": None if value is None else round(value, 4),
                        "expected": round(expect, 4),
                        "on_track": on_track(t["kind"], value, expect),
                        **counts,
                    }
                )
            out.append(
                {
                    "key": t["key"],
                    "kind": t["kind"],
                    "label": t["label"],
                    "goal": t["goal"],
                    "days": points,
                }
            )
        return out

    def _cases(
        self, c: Campaign, t: dict[str, Any], days: list[date], by: Principal
    ) -> list[tuple[float | None, dict[str, int]]]:
        scope, params = case_sql(by, "c")
        recurring = t["kind"] == "recurrence_max"
        rows = self.session.execute(
            text(_CASE_GROUPS.format(scope=scope)),
            {
                **params,
                "tz": self.tz,
                "city": c.city,
                "campaign_id": c.id,
                "statuses": list(COUNTED if recurring else REGISTERED),
                "categories": list(t["categories"]),
                "recurring": recurring,
            },
        ).all()
        out: list[tuple[float | None, dict[str, int]]] = []
        for day in days:
            reported = sum(n for r, _, n in rows if r <= day)
            if recurring:
                out.append((float(reported), {"recurring": reported}))
                continue
            closed = sum(n for r, k, n in rows if r <= day and k is not None and k <= day)
            value = closed / reported if reported else None
            out.append((value, {"registered": reported, "closed": closed}))
        return out

    def _coverage(
        self, ids: list[int], days: list[date], by: Principal
    ) -> list[tuple[float | None, dict[str, Any]]]:
        mine = self.coverage.hotspots_in_scope(by)
        ids = [i for i in ids if mine is None or i in set(mine)]
        weeks: dict[date, tuple[float | None, int]] = {}
        out: list[tuple[float | None, dict[str, Any]]] = []
        for day in days:
            monday = day - timedelta(days=day.weekday())
            if monday not in weeks:
                weeks[monday] = self._week(monday, ids)
            mean, n = weeks[monday]
            out.append((mean, {"week": monday, "hotspots": n}))
        return out

    def _week(self, monday: date, ids: list[int]) -> tuple[float | None, int]:
        """Mean covered share of hotspots ``ids`` in the stored run of the week ``monday``."""
        if not ids:
            return None, 0
        start = datetime.combine(monday, time(0), ZoneInfo(self.tz))
        try:
            run = self.coverage.run("week", start)
        except NotFound:  # no unit grids: no coverage to read
            return None, 0
        mean, n = self.session.execute(
            _HOTSPOT_MEAN, {"city": run.city, "run_id": run.id, "ids": ids}
        ).one()
        return (None if mean is None else float(mean)), int(n)
