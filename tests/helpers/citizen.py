"""Sample renderings of the citizen's pages (``layers.citizen``) for the page tests."""

from __future__ import annotations

from datetime import UTC, datetime

from layers.citizen import (
    CategoryChoice,
    MapPage,
    ReportPage,
    StatusPage,
    StatusView,
    map_page,
    report_page,
    status_page,
)

BOUNDS = (113.6, 34.7, 113.7, 34.8)
CHOICES = (
    CategoryChoice("0102", "暴露垃圾", "市容环境"),
    CategoryChoice("0201", "非法小广告", "宣传广告"),
)


def sample_status(status: str = "reported") -> StatusView:
    """A report's status as the status page shows it."""
    return StatusView(
        tracking_number="12-K7QX2M",
        category="暴露垃圾",
        status=status,
        reported_at=datetime(2026, 11, 20, 2, 30, tzinfo=UTC),
        updated_at=datetime(2026, 11, 20, 3, 0, tzinfo=UTC),
        closed_at=datetime(2026, 11, 21, 3, 0, tzinfo=UTC) if status == "closed" else None,
        precision_m=100.0,
    )


def citizen_pages(locale: str) -> dict[str, str]:
    """The report form, a report's status and the problem map in ``locale``."""
    return {
        "report": report_page(ReportPage(CHOICES, BOUNDS, lang=locale)),
        "report status": status_page(
            StatusPage(number="12-K7QX2M", found=sample_status(), lang=locale)
        ),
        "problem map": map_page(MapPage(CHOICES, BOUNDS, lang=locale)),
    }
