"""The campaign tag of cases (专项行动): which campaigns a case belongs to, decided once.

A case carries a campaign's tag when it was reported during the campaign's period and in its
scope: its category among the campaign's categories (any category when none are named), and its
grid in one of the campaign's grid subtrees or its hotspots among the campaign's hotspots (the
whole city when neither is named). The rule is written once, as the SQL condition
:data:`IN_CAMPAIGN` over a campaign ``k`` and a case ``c``: intake tags a new case with it (one
statement), the bulk import tags its rows with it, and ``service.campaigns`` tags the existing
cases of a new or edited campaign with it.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import text
from sqlalchemy.orm import Session

from service.db.models import Case

IN_CAMPAIGN = """(
    k.city = c.city
    AND c.reported_at >= k.starts_at AND c.reported_at < k.ends_at
    AND (cardinality(k.category_codes) = 0 OR c.category_code = ANY(k.category_codes))
    AND (
        (cardinality(k.grid_prefixes) = 0 AND cardinality(k.hotspot_ids) = 0)
        OR EXISTS (SELECT 1 FROM unnest(k.grid_prefixes) p WHERE starts_with(c.grid_code, p))
        OR k.hotspot_ids && c.hotspot_ids
    )
)"""

_TAG_ONE = text(
    "INSERT INTO campaign_cases (city, campaign_id, case_id) "
    "SELECT c.city, k.id, c.id FROM cases c JOIN campaigns k ON k.city = c.city "
    f"WHERE c.city = :city AND c.id = :case_id AND {IN_CAMPAIGN} ON CONFLICT DO NOTHING"
)

_TAG_RANGE = text(
    "INSERT INTO campaign_cases (city, campaign_id, case_id) "
    "SELECT k.city, k.id, c.id FROM campaigns k JOIN cases c ON k.city = c.city "
    "WHERE k.city = :city AND k.ends_at > :first AND k.starts_at <= :last "
    f"AND c.id BETWEEN :low AND :high AND {IN_CAMPAIGN} ON CONFLICT DO NOTHING"
)


def tag_case(session: Session, case: Case) -> None:
    """Tag the new (flushed) ``case`` with every campaign it falls in (one statement)."""
    session.execute(_TAG_ONE, {"city": case.city, "case_id": case.id})


def tag_imported(
    session: Session,
    city: str,
    low_id: int,
    high_id: int,
    first_reported: datetime,
    last_reported: datetime,
) -> None:
    """Tag the cases a bulk import stored (ids ``low_id``–``high_id``, reported between
    ``first_reported`` and ``last_reported``) with the campaigns they fall in: one statement
    over the id range (a row of another writer in the range gets its own, same tags); no case
    is read when no campaign overlaps the import's time span."""
    session.execute(
        _TAG_RANGE,
        {
            "city": city,
            "low": low_id,
            "high": high_id,
            "first": first_reported,
            "last": last_reported,
        },
    )
