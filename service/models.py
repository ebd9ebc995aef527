"""Database tables (SQLAlchemy 2 + GeoAlchemy2). Geometry is stored in EPSG:4326."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from geoalchemy2 import Geometry, WKBElement
from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    Float,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

LEVELS = ("city", "district", "street", "community", "unit")


class Base(DeclarativeBase):
    """Declarative base for every citygrid table."""


class Grid(Base):
    """One version of one grid at any of the five levels.

    A boundary change closes the current version (``valid_to``) and inserts the next one, so a
    case keeps pointing at the grid that was valid when it was reported.
    """

    __tablename__ = "grids"
    __table_args__ = (
        UniqueConstraint("city", "code", "version", name="uq_grids_city_code_version"),
        Index(
            "uq_grids_current_code",
            "city",
            "code",
            unique=True,
            postgresql_where=text("valid_to IS NULL"),
        ),
        Index("ix_grids_city_level_parent", "city", "level", "parent_code"),
        CheckConstraint(
            "level IN ('city', 'district', 'street', 'community', 'unit')", name="ck_grids_level"
        ),
        CheckConstraint("valid_to IS NULL OR valid_to > valid_from", name="ck_grids_validity"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    city: Mapped[str] = mapped_column(String(12))
    code: Mapped[str] = mapped_column(String(15))
    version: Mapped[int] = mapped_column(Integer, server_default=text("1"))
    level: Mapped[str] = mapped_column(String(16))
    parent_code: Mapped[str | None] = mapped_column(String(15))
    name: Mapped[str] = mapped_column(Text)
    area_m2: Mapped[float] = mapped_column(Float)
    responsible_unit: Mapped[str | None] = mapped_column(Text)
    responsible_persons: Mapped[list[dict[str, Any]]] = mapped_column(
        JSONB, server_default=text("'[]'::jsonb")
    )
    land_use: Mapped[str | None] = mapped_column(Text)
    management_grade: Mapped[str | None] = mapped_column(Text)
    valid_from: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    valid_to: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    geom: Mapped[WKBElement] = mapped_column(
        Geometry("MULTIPOLYGON", srid=4326, spatial_index=True)
    )
