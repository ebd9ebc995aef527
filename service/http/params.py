"""Parsing of shared query parameters."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import Path, Query

from service.errors import CitygridError, InvalidInput

IdPath = Annotated[int, Path(ge=1, le=2**63 - 1, description="Row id")]
DatumName = Literal["wgs84", "gcj02", "bd09"]
DatumQuery = Annotated[
    DatumName,
    Query(description="Datum of the coordinates in the answer: wgs84, gcj02 (AMap) or bd09"),
]


def parse_bbox(
    value: str | None, error: type[CitygridError] = InvalidInput
) -> tuple[float, float, float, float] | None:
    """``minlon,minlat,maxlon,maxlat`` (or the 6-number 3D form) → tuple; ``error`` if bad."""
    if value is None:
        return None
    try:
        parts = [float(v) for v in value.split(",")]
    except ValueError as exc:
        raise error("bbox must be numbers: minlon,minlat,maxlon,maxlat", field="bbox") from exc
    if len(parts) == 6:  # 3D bbox: drop the heights
        parts = [parts[0], parts[1], parts[3], parts[4]]
    if len(parts) != 4 or parts[0] > parts[2] or parts[1] > parts[3]:
        raise error("bbox must be minlon,minlat,maxlon,maxlat with min <= max", field="bbox")
    return parts[0], parts[1], parts[2], parts[3]
