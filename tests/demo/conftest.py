"""The demo city, its roads and hotspots, built once for the demo generator tests."""

import geopandas as gpd
import pytest

from demo.city import build_demo_city, build_demo_roads
from demo.hotspots import build_demo_hotspots


@pytest.fixture(scope="session")
def city() -> gpd.GeoDataFrame:
    return build_demo_city()


@pytest.fixture(scope="session")
def roads() -> gpd.GeoDataFrame:
    return build_demo_roads()


@pytest.fixture(scope="session")
def hotspots(city, roads) -> gpd.GeoDataFrame:
    return build_demo_hotspots(city=city, roads=roads)


@pytest.fixture(scope="session")
def utm(city):
    return city.estimate_utm_crs()


@pytest.fixture(scope="session")
def district(city):
    return city[city["level"] == "district"].geometry.iloc[0]


@pytest.fixture(scope="session")
def district_m(city, utm):
    return city[city["level"] == "district"].to_crs(utm).geometry.iloc[0]


@pytest.fixture(scope="session")
def hotspots_m(hotspots, utm) -> gpd.GeoDataFrame:
    return hotspots.to_crs(utm)
