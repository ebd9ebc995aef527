"""A small hand-made city in metres (UTM 49N) around lon 113.65, lat 34.75.

Community A (400 m x 200 m) holds eight 100 m unit grids in two rows; community B, east of it,
has a 100 m x 100 m hole (a lake no grid covers) and one multipolygon unit grid.
"""

from __future__ import annotations

import shapely
from pyproj import Transformer
from shapely.geometry import box

from service.accounts.principal import SYSTEM
from service.grids.registry import GridInput

TO_LONLAT = Transformer.from_crs(32649, 4326, always_xy=True)
TO_UTM = Transformer.from_crs(4326, 32649, always_xy=True)
X0, Y0 = TO_UTM.transform(113.65, 34.75)
X0, Y0 = round(X0, -2), round(Y0, -2)

CITY = "41010000000000"
DISTRICT = "41010500000000"
STREET = "41010500100000"
COMM_A = "41010500100100"
COMM_B = "41010500100200"


def lonlat(geom_m: shapely.Geometry) -> shapely.Geometry:
    """Metric box relative to (X0, Y0) → lon/lat.

    Long edges are split every 100 m first, where the unit grids' corners are: a lon/lat edge
    is straight in degrees, so without those vertices a community's corner drawn on its
    street's 800 m edge would lie ~9 mm outside it in lon/lat.
    """
    return shapely.transform(
        shapely.segmentize(geom_m, 100.0),
        lambda xy: __import__("numpy").column_stack(TO_LONLAT.transform(xy[:, 0], xy[:, 1])),
    )


def mbox(x1: float, y1: float, x2: float, y2: float) -> shapely.Polygon:
    return box(X0 + x1, Y0 + y1, X0 + x2, Y0 + y2)


def point_lonlat(x: float, y: float) -> tuple[float, float]:
    lon, lat = TO_LONLAT.transform(X0 + x, Y0 + y)
    return float(lon), float(lat)


def unit_code(community: str, seq: int) -> str:
    return community[:12] + f"{seq:02d}"


def small_city() -> list[GridInput]:
    """Grid inputs for the whole small city (parents first is not required)."""
    whole = mbox(0, 0, 800, 200)
    items = [
        GridInput(CITY, "city", "郑州市", lonlat(whole)),
        GridInput(DISTRICT, "district", "金水区", lonlat(whole)),
        GridInput(STREET, "street", "经八路街道", lonlat(whole)),
        GridInput(COMM_A, "community", "甲社区", lonlat(mbox(0, 0, 400, 200))),
        GridInput(COMM_B, "community", "乙社区", lonlat(mbox(400, 0, 800, 200))),
    ]
    seq = 1
    for row_top in (200, 100):  # north row first
        for x in range(0, 400, 100):
            items.append(
                GridInput(
                    unit_code(COMM_A, seq),
                    "unit",
                    f"甲社区第{seq:02d}网格",
                    lonlat(mbox(x, row_top - 100, x + 100, row_top)),
                    responsible_unit="经八路街道办",
                    responsible_persons=[{"name": f"网格员{seq}", "phone": f"1380000{seq:04d}"}],
                )
            )
            seq += 1
    lake = mbox(500, 50, 600, 150)
    west_b = shapely.difference(mbox(400, 0, 700, 200), lake)
    items.append(GridInput(unit_code(COMM_B, 1), "unit", "乙社区第01网格", lonlat(west_b)))
    # a multipolygon grid: two separate strips at the east end of community B
    strips = shapely.MultiPolygon([mbox(700, 0, 800, 90), mbox(700, 110, 800, 200)])
    items.append(GridInput(unit_code(COMM_B, 2), "unit", "乙社区第02网格", lonlat(strips)))
    items.append(
        GridInput(unit_code(COMM_B, 3), "unit", "乙社区第03网格", lonlat(mbox(700, 90, 800, 110)))
    )
    return items


MARKET = mbox(120, 120, 180, 180)  # a market inside unit A-02, 20 m buffer
RAIL_X = 350  # a north-south rail line at x = 350 m, 10 m buffer


def hotspot_inputs():
    """Hotspots of the small city (as service inputs)."""
    from shapely.geometry import LineString

    from service.hotspots.hotspots import HotspotInput

    return [
        HotspotInput(
            "market-01",
            "farmer_market",
            "甲农贸市场",
            lonlat(MARKET),
            buffer_m=20,
            owner_unit="甲市场管理办",
            owner_name="李经理",
            owner_phone="13700000000",
        ),
        HotspotInput(
            "rail-01",
            "rail_corridor",
            "京广铁路沿线",
            lonlat(LineString([(X0 + RAIL_X, Y0 - 50), (X0 + RAIL_X, Y0 + 250)])),
            buffer_m=10,
            owner_unit="铁路护路办",
        ),
    ]


def commit_small_city(session, settings) -> None:
    """Write (and commit) the small city for ``settings``' city, valid since 2025."""
    from datetime import UTC, datetime

    from service.grids.registry import Registry

    Registry(session, settings).write(small_city(), at=datetime(2025, 1, 1, tzinfo=UTC), by=SYSTEM)
    session.commit()
