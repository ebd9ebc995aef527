"""Places of the demo city for scope tests, read from its grids: a street, two sibling
communities in it, a unit grid in each, and two unit grids of those communities sharing an edge
(with a point on that edge)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.orm import Session

from service.cases.catalogue import seed_catalogue
from service.settings import AppSettings

_EDGE = text(
    """
    WITH pair AS (
        SELECT a.code AS a, b.code AS b,
               ST_LineMerge(ST_CollectionExtract(ST_Intersection(a.geom, b.geom), 2)) AS edge
        FROM grids a JOIN grids b ON a.geom && b.geom
        WHERE a.city = :city AND b.city = :city
          AND a.level = 'unit' AND b.level = 'unit'
          AND a.valid_to IS NULL AND b.valid_to IS NULL
          AND substr(a.code, 1, 9) = substr(b.code, 1, 9)
          AND substr(a.code, 1, 12) < substr(b.code, 1, 12)
          AND ST_Intersects(a.geom, b.geom)
    )
    SELECT a, b, ST_X(p), ST_Y(p)
    FROM pair, LATERAL ST_LineInterpolatePoint(ST_GeometryN(edge, 1), 0.5) AS p
    WHERE ST_GeometryType(ST_GeometryN(edge, 1)) = 'ST_LineString'
      AND ST_Length(geography(ST_GeometryN(edge, 1))) > 20
    ORDER BY a, b
    LIMIT 1
    """
)

_INSIDE = text(
    """
    SELECT code, ST_X(p), ST_Y(p)
    FROM grids, LATERAL ST_PointOnSurface(geom) AS p
    WHERE city = :city AND level = 'unit' AND valid_to IS NULL
      AND code LIKE :prefix AND code NOT IN (:a, :b)
      AND ST_Distance(geography(p), geography(ST_Boundary(geom))) > 20
    ORDER BY code
    LIMIT 1
    """
)


@dataclass(frozen=True)
class Places:
    """Codes and points of the demo city used by the scope tests."""

    street: str  # street-level code (its subtree holds both communities)
    community: str  # community of ``edge_a`` and ``unit``
    sibling: str  # the next community of the same street (``edge_b``, ``sibling_unit``)
    edge_a: str  # unit grid of ``community`` sharing an edge with ``edge_b``
    edge_b: str
    edge_point: tuple[float, float]  # a point in the middle of their shared edge
    unit: str  # another unit grid of ``community``, and a point well inside it
    unit_point: tuple[float, float]
    sibling_unit: str
    sibling_point: tuple[float, float]


def _pad(prefix: str, width: int) -> str:
    return prefix.ljust(width, "0")


def demo_places(session: Session, settings: AppSettings) -> Places:
    """The places above, found in the demo city's current grids (the catalogue is seeded,
    so cases can be reported there)."""
    city = settings.grids.city
    width = settings.grids.code_width
    seed_catalogue(session, city)
    a, b, lon, lat = session.execute(_EDGE, {"city": city}).one()
    inside: dict[str, Any] = {}
    for name, code in (("unit", a), ("sibling_unit", b)):
        row = session.execute(
            _INSIDE, {"city": city, "prefix": code[:12] + "%", "a": a, "b": b}
        ).one()
        inside[name] = (row[0], (float(row[1]), float(row[2])))
    return Places(
        street=_pad(a[:9], width),
        community=_pad(a[:12], width),
        sibling=_pad(b[:12], width),
        edge_a=a,
        edge_b=b,
        edge_point=(float(lon), float(lat)),
        unit=inside["unit"][0],
        unit_point=inside["unit"][1],
        sibling_unit=inside["sibling_unit"][0],
        sibling_point=inside["sibling_unit"][1],
    )


def report_at(
    client: TestClient,
    point: tuple[float, float],
    category: str = "0102",
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """Report a problem at ``point`` (as the client's admin unless ``headers`` say who)."""
    body = {"category_code": category, "lon": point[0], "lat": point[1]} | extra
    r = client.post("/api/cases", json=body, headers=headers)
    assert r.status_code == 201, r.text
    return r.json()


def act(
    client: TestClient,
    case_id: int,
    action: str,
    headers: dict[str, str] | None = None,
    **extra: Any,
):
    """Send one workflow action with the case's current version (read as the admin)."""
    version = client.get(f"/api/cases/{case_id}").json()["version"]
    body = {"action": action, "version": version} | extra
    return client.post(f"/api/cases/{case_id}/actions", json=body, headers=headers)


def state(client: TestClient, case_id: int) -> tuple[Any, ...]:
    """What a refused write must leave alone: status, version, department and the history
    (read as the admin)."""
    case = client.get(f"/api/cases/{case_id}").json()
    history = client.get(f"/api/cases/{case_id}/history").json()
    return case["status"], case["version"], case["department"], len(history)
