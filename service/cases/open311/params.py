"""What Open311 clients send: the jurisdiction, the api_key, GET filters and paging, POST fields.

The standard says an optional argument sent empty means the same as one not sent, and lists
(``service_code``, ``service_request_id``, ``status``) are comma-separated.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from service.cases.cases import CaseInput
from service.cases.workflow import OPEN_STATUSES, STATUSES
from service.errors import BadParameter, NotFound
from service.http.timeparse import aware

MAX_PAGE_SIZE = 1000  # the standard's default cap on one answer
MAX_PAGE = 1_000_000
WINDOW = timedelta(days=90)  # the standard's default, and widest, requested_datetime range
MAX_ROW_ID = 2**63 - 1  # case ids are bigint
# longest accepted POST values (description: the standard's 4,000 characters)
FIELD_LIMITS = {
    "service_code": 20,
    "description": 4000,
    "address_string": 500,
    "first_name": 50,
    "last_name": 50,
    "phone": 40,
    "email": 200,
    "device_id": 200,
    "account_id": 200,
    "media_url": 2000,
    "requested_datetime": 40,
    "datum": 10,
    "idempotency_key": 200,
}
ATTRIBUTE_LIMIT = 1000


def given(value: Any) -> str | None:
    """``value`` as a string, or None when it was not sent or sent empty."""
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def comma_list(value: Any) -> list[str]:
    """The non-empty items of a comma-separated argument."""
    text = given(value)
    return [v.strip() for v in text.split(",") if v.strip()] if text else []


def check_jurisdiction(value: Any, served: str) -> None:
    """``NotFound`` unless ``jurisdiction_id`` is absent (one jurisdiction is served, so it is
    optional) or names the one this server serves."""
    sent = given(value)
    if sent is not None and sent != served:
        raise NotFound(
            f"jurisdiction_id {sent!r} not found: this server serves {served!r}",
            field="jurisdiction_id",
        )


def row_id(value: str) -> int | None:
    """A ``service_request_id`` as a case id, or None when no case can have it."""
    try:
        number = int(value)
    except ValueError:
        return None
    return number if 1 <= number <= MAX_ROW_ID else None


def request_ids(value: Any) -> list[int]:
    """The case ids among a comma-separated ``service_request_id`` (others match nothing)."""
    items = comma_list(value)
    if len(items) > MAX_PAGE_SIZE:
        raise BadParameter(
            f"service_request_id lists at most {MAX_PAGE_SIZE} ids, got {len(items)}",
            field="service_request_id",
        )
    return [n for n in map(row_id, items) if n is not None]


@dataclass(frozen=True)
class RequestFilter:
    """Which service requests ``GET requests`` answers (times inclusive)."""

    start: datetime
    end: datetime
    service_codes: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()


def request_filter(
    service_code: Any, status: Any, start_date: Any, end_date: Any, tz: str, now: datetime
) -> RequestFilter:
    """The filter from the query; without dates the most recent 90 days (the standard)."""
    first = _date("start_date", start_date, tz)
    last = _date("end_date", end_date, tz)
    if first is None:
        end = last or now
        start = end - WINDOW
    else:
        start, end = first, last or first + WINDOW
    if end < start:
        raise BadParameter("end_date is before start_date", field="end_date")
    if end - start > WINDOW:
        raise BadParameter(
            "start_date and end_date may not span more than 90 days (GeoReport v2): "
            "ask for shorter windows",
            field="end_date",
        )
    return RequestFilter(start, end, tuple(comma_list(service_code)), _statuses(status))


def _date(name: str, value: Any, tz: str) -> datetime | None:
    text = given(value)
    if text is None:
        return None
    try:
        return aware(datetime.fromisoformat(text), tz)
    except ValueError as exc:
        raise BadParameter(
            f"{name} must be a w3 date-time such as 2026-01-31T00:00:00Z, got {text!r}", field=name
        ) from exc


def _statuses(value: Any) -> tuple[str, ...]:
    wanted = set(comma_list(value))
    unknown = sorted(wanted - {"open", "closed"})
    if unknown:
        raise BadParameter(
            f"status must be open and/or closed (comma-separated), got {unknown[0]!r}",
            field="status",
        )
    return tuple(s for s in STATUSES if ("open" if s in OPEN_STATUSES else "closed") in wanted)


def paging(page: Any, page_size: Any) -> tuple[int, int]:
    """``(page, page_size)``: pages count from 1; at most 1,000 requests per page (default)."""
    return (
        _whole("page", page, 1, MAX_PAGE),
        _whole("page_size", page_size, MAX_PAGE_SIZE, MAX_PAGE_SIZE),
    )


def _whole(name: str, value: Any, default: int, maximum: int) -> int:
    text = given(value)
    if text is None:
        return default
    try:
        number = int(text)
    except ValueError:
        number = 0
    if not 1 <= number <= maximum:
        raise BadParameter(f"{name} must be a whole number from 1 to {maximum}", field=name)
    return number


def case_input(fields: dict[str, str], key: str | None, tz: str) -> CaseInput:
    """The case a POSTed service request reports (``BadParameter`` naming a bad field);
    ``key`` is the Idempotency-Key header."""
    if key is not None and len(key) > FIELD_LIMITS["idempotency_key"]:
        raise BadParameter(
            f"Idempotency-Key is longer than {FIELD_LIMITS['idempotency_key']} characters",
            field="Idempotency-Key",
        )
    for name, value in fields.items():
        limit = ATTRIBUTE_LIMIT if name.startswith("attribute[") else FIELD_LIMITS.get(name)
        if limit is not None and len(value) > limit:
            raise BadParameter(f"{name} is longer than {limit} characters", field=name)
    code = given(fields.get("service_code"))
    if code is None:
        raise BadParameter("service_code is required (see services.xml)", field="service_code")
    lon, lat = _location(fields)
    attributes = {
        k[len("attribute[") : -1]: v
        for k, v in fields.items()
        if k.startswith("attribute[") and k.endswith("]")
    }
    name = " ".join(fields[k] for k in ("first_name", "last_name") if given(fields.get(k)))
    reporter = {
        k: v
        for k, v in {
            "name": name or None,
            "phone": given(fields.get("phone")),
            "email": given(fields.get("email")),
            "device_id": given(fields.get("device_id")),
            "account_id": given(fields.get("account_id")),
        }.items()
        if v
    }
    media = given(fields.get("media_url"))
    return CaseInput(
        category_code=code,
        lon=lon,
        lat=lat,
        datum=given(fields.get("datum")) or "wgs84",
        source="open311",
        description=given(fields.get("description")),
        address=given(fields.get("address_string")),
        reporter=reporter or None,
        reported_at=_date("requested_datetime", fields.get("requested_datetime"), tz),
        fields=attributes,
        photos=[media] if media else [],
        idempotency_key=key or given(fields.get("idempotency_key")),
    )


def _location(fields: dict[str, str]) -> tuple[float, float]:
    lat, lon = given(fields.get("lat")), given(fields.get("long"))
    if lat is None and lon is None:
        other = [n for n in ("address_string", "address_id") if given(fields.get(n))]
        if other:
            raise BadParameter(
                f"lat and long are required: this jurisdiction cannot geocode {other[0]}; "
                "send lat and long (WGS 84 decimal degrees, or datum=gcj02|bd09)",
                field="lat",
            )
        raise BadParameter(
            "a location is required: lat and long (WGS 84 decimal degrees)", field="lat"
        )
    return _number("long", lon), _number("lat", lat)


def _number(name: str, value: str | None) -> float:
    if value is None:
        other = "lat" if name == "long" else "long"
        raise BadParameter(f"{name} is required with {other} (WGS 84 decimal degrees)", field=name)
    try:
        number = float(value)
    except ValueError as exc:
        raise BadParameter(f"{name} must be a number, got {value!r}", field=name) from exc
    if not math.isfinite(number):
        raise BadParameter(f"{name} must be a finite number, got {value!r}", field=name)
    return number
