"""Paged GeoJSON lists: a page never ends silently.

Every list that pages answers a FeatureCollection with ``numberMatched`` (all matches),
``numberReturned`` (on this page) and ``links`` (``self``, and ``next``/``prev`` when there are
more), as OGC API – Features does; the ``next`` link is also sent as an HTTP ``Link`` header so
that clients that page by header (GDAL, curl scripts) follow it too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Query, Request, Response

LimitQ = Annotated[
    int, Query(ge=1, le=10_000, description="Features per page (see numberMatched and links)")
]
OffsetQ = Annotated[int, Query(ge=0, description="Features to skip (follow the `next` link)")]


def feature_page(
    request: Request,
    response: Response,
    features: list[dict[str, Any]],
    *,
    matched: int,
    limit: int,
    offset: int,
) -> dict[str, Any]:
    """The FeatureCollection of one page, with its counts and links (``Link`` header too)."""
    links = [_link(request, "self", offset, limit)]
    if offset + len(features) < matched:
        links.append(_link(request, "next", offset + limit, limit))
    if offset > 0:
        links.append(_link(request, "prev", max(offset - limit, 0), limit))
    response.headers["Link"] = ", ".join(f'<{x["href"]}>; rel="{x["rel"]}"' for x in links[1:])
    if not links[1:]:
        del response.headers["Link"]
    return {
        "type": "FeatureCollection",
        "numberMatched": matched,
        "numberReturned": len(features),
        "links": links,
        "features": features,
    }


def number_matched(returned: int, limit: int, offset: int, count: Callable[[], int]) -> int:
    """All matches: known without counting when this page is the last, non-empty one."""
    if returned < limit and (returned or not offset):
        return offset + returned
    return count()


def _link(request: Request, rel: str, offset: int, limit: int) -> dict[str, str]:
    href = str(request.url.include_query_params(offset=offset, limit=limit))
    return {"rel": rel, "href": href, "type": "application/geo+json"}
