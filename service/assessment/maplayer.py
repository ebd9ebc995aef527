"""The red/yellow layer of the dispatcher map: grids of one level coloured by grade or by
list, GeoJSON with a ``fill`` per feature and a ``legend`` like the heat layers, each feature
carrying its score's components for the popup.

Like the heat layers' answers, its words are English msgids of the pages' catalogue
(``layers.styles.ANSWER_TEXTS``), which the map page shows in its language; the components
line is written without words (the indicator names are the scheme's own)."""

from __future__ import annotations

from typing import Any

import shapely
from geoalchemy2.shape import to_shape
from sqlalchemy import select
from sqlalchemy.orm import Session

from gis.datum import transform_geometries
from service.db.anyof import any_of
from service.db.models import Grid
from service.settings import AppSettings

GRADE_COLOURS = {"A": "#1a9850", "B": "#91cf60", "C": "#fee08b", "D": "#fc8d59", "E": "#d73027"}
LIST_COLOURS = {"red": "#d7301f", "yellow": "#fec44f", None: "#d9d9d9"}
INACTIVE = "#f0f0f0"  # nothing to score this period
LIST_LABELS = {"red": "red list", "yellow": "yellow list", None: "not listed"}
NO_CASES = "no cases this period"


def _popup_components(s: dict[str, Any]) -> str:
    """One line per component: name value → points × weight = weighted points."""
    lines = []
    for c in s.get("components", []):
        v = c["value"]
        shown = (
            "—"
            if v is None
            else (f"{v * 100:.1f}%" if (c.get("indicator") or "").endswith("_rate") else f"{v:g}")
        )
        lines.append(
            f"{c['name']} {shown}: {c['points']:g} × {c['effective_weight']:g}% = "
            f"{c['weighted_points']:g}"
        )
    for b in s.get("bonuses", []):
        lines.append(f"{b['name']} +{b['points']:g}")
    for d in s.get("deductions", []):
        lines.append(f"{d['name']} −{d['points']:g} (#{len(d['case_ids'])})")
    return "; ".join(lines)


def list_layer(
    session: Session,
    settings: AppSettings,
    head: dict[str, Any],
    scores: list[dict[str, Any]],
    level: str,
    by: str,
    datum: str = "wgs84",
) -> dict[str, Any]:
    """The grids of ``level`` that ``scores`` holds, coloured by ``by`` (grade or list), in
    ``datum`` coordinates (GCJ-02 for an AMap base map)."""
    rows = {s["key"]: s for s in scores}
    grids = session.scalars(
        select(Grid).where(
            Grid.city == settings.grids.city,
            Grid.level == level,
            Grid.valid_to.is_(None),
            any_of(Grid.code, rows),
        )
    ).all()
    features = []
    for g in sorted(grids, key=lambda g: g.code):
        s = rows[g.code]
        if not s["active"]:
            fill = INACTIVE
        elif by == "grade":
            fill = GRADE_COLOURS.get(s["grade"], "#bdbdbd")
        else:
            fill = LIST_COLOURS[s["list"]]
        # rounded first, then shifted, as the heat layers do: a GCJ-02 answer is the shift of
        # the WGS 84 answer's positions
        geom = shapely.set_precision(to_shape(g.geom), 1e-6)
        if datum != "wgs84":
            geom = transform_geometries(geom, "wgs84", datum)
        features.append(
            {
                "type": "Feature",
                "geometry": shapely.geometry.mapping(geom),
                "properties": {
                    "code": g.code,
                    "name": g.name,
                    "total": s["total"],
                    "grade": s["grade"],
                    "rank": s["rank"],
                    "group": s["group"],
                    "list": LIST_LABELS[s["list"]],
                    "components": _popup_components(s),
                    "fill": fill,
                },
            }
        )
    if by == "grade":
        rows_ = [{"color": c, "label": k} for k, c in GRADE_COLOURS.items()]
        title = "Grade"
    else:
        rows_ = [
            {"color": LIST_COLOURS[k], "label": LIST_LABELS[k]} for k in ("red", "yellow", None)
        ]
        title = "Red/yellow list"
    rows_.append({"color": INACTIVE, "label": NO_CASES})
    return {
        "type": "FeatureCollection",
        "legend": {"title": title, "rows": rows_},
        "period": head["period"],
        "published": head.get("published"),
        "features": features,
    }
