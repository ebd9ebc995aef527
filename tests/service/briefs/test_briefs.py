"""The daily set (三个一): made once per scope and day, stored as issued, read back with
python-docx and pdftotext, its figures equal to the indicator API's; scope, bad input, issues,
the section hooks."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from service.briefs import sections
from service.db.models import Document
from service.grids.registry import Registry
from service.settings import AppSettings
from tests.helpers.accounts import admin_client, headers_of
from tests.helpers.briefs import (
    A1,
    A2,
    A3,
    B1,
    DAY,
    add_case,
    at,
    by_kind,
    docx_text,
    first_number_after,
    pdf_text,
)
from tests.helpers.city import COMM_A, DISTRICT, STREET

HEADLINE = {
    "reported": "新发现问题",
    "registered": "立案",
    "dispatched": "派遣",
    "closed": "结案",
    "overdue_open": "超期未结",
}


@pytest.fixture
def day_cases(case_city: Registry, session: Session) -> dict[str, int]:
    """Cases of DAY (and the day before) in the small city's street."""
    city = case_city.city
    prev = DAY - timedelta(days=1)
    ids: dict[str, int] = {}
    ids["old"] = add_case(
        session, city, A3, at(prev, 9), at(prev, 11), [("register", at(prev, 9, 5))]
    )
    ids["overdue"] = add_case(
        session,
        city,
        A1,
        at(DAY, 9),
        at(DAY, 12),
        [("register", at(DAY, 9, 10)), ("dispatch", at(DAY, 9, 20))],
        address="经八路与金水路交叉口东南角",
        photos=["https://img.example.cn/p/1.jpg"],
    )
    ids["closed"] = add_case(
        session,
        city,
        A2,
        at(DAY, 10),
        at(DAY + timedelta(days=2), 10),
        [
            ("register", at(DAY, 10, 5)),
            ("dispatch", at(DAY, 10, 10)),
            ("feedback", at(DAY, 14)),
            ("verify", at(DAY, 15)),
        ],
        source="citizen",
        category="0201",
        department="城管执法中队",
    )
    ids["rework"] = add_case(
        session,
        city,
        A2,
        at(DAY, 8),
        at(DAY + timedelta(days=3), 8),
        [
            ("register", at(DAY, 8, 5)),
            ("dispatch", at(DAY, 8, 10)),
            ("feedback", at(DAY, 10)),
            ("rework", at(DAY, 11)),
        ],
        source="hotline",
        address="农业路38号",
    )
    ids["recurring"] = add_case(
        session,
        city,
        B1,
        at(DAY, 16),
        at(DAY + timedelta(days=1), 16),
        [("register", at(DAY, 16, 5))],
        source="inspector",
        recurring_of=ids["old"],
        department="乙社区环卫组",
    )
    session.commit()
    return ids


@pytest.fixture
def client(
    settings: AppSettings, sessions: sessionmaker[Session], session: Session, day_cases
) -> Any:
    with admin_client(settings, sessions, session) as c:
        yield c


def _make(client: TestClient, scope: str = STREET, **extra: Any) -> Any:
    return client.post("/api/briefs", json={"scope": scope, "date": DAY.isoformat(), **extra})


def test_the_set_is_made_once_and_its_figures_are_the_indicator_apis(
    client: TestClient,
) -> None:
    made = _make(client)
    assert made.status_code == 201, made.text
    docs = by_kind(made.json()["items"])
    assert set(docs) == {
        ("brief", "docx"),
        ("brief", "pdf"),
        ("brief", "html"),
        ("circular", "docx"),
        ("circular", "pdf"),
        ("circular", "html"),
        ("ledger", "xlsx"),
    }
    api = client.get(
        f"/api/assessment/figures/grid/{STREET}", params={"period": DAY.isoformat()}
    ).json()["figures"]
    assert api["reported"] == 4 and api["overdue_open"] == 2  # the old case too

    brief = client.get(docs[("brief", "docx")]["href"])
    assert brief.status_code == 200
    assert brief.headers["content-type"].startswith("application/vnd.openxmlformats")
    text, tables = docx_text(brief.content)
    assert "工作简报" in text
    rows = {r[0]: r[1] for r in tables[0]}
    for key, zh in HEADLINE.items():
        assert int(rows[zh]) == api[key], zh
    assert rows["按期结案率"] == f"{api['on_time_close_rate'] * 100:.1f}%"

    pdf = client.get(docs[("brief", "pdf")]["href"]).content
    assert pdf.startswith(b"%PDF")
    words = pdf_text(pdf)
    assert "工作简报" in words
    for key, zh in HEADLINE.items():
        assert first_number_after(words, zh + " ") == api[key], zh

    page = client.get(docs[("brief", "html")]["href"]).text
    assert "市民随手拍" in page and "data:image/png;base64," in page

    # the same request again finds the stored set: nothing new is made
    again = _make(client)
    assert again.status_code == 200 and again.json()["created"] is False
    assert {d["id"] for d in again.json()["items"]} == {d["id"] for d in docs.values()}


def test_sources_and_categories_add_up_to_the_reports(client: TestClient) -> None:
    docs = by_kind(_make(client).json()["items"])
    _, tables = docx_text(client.get(docs[("brief", "docx")]["href"]).content)
    sources = {r[0]: int(r[1]) for r in tables[1][1:]}
    assert sources == {"网格巡查": 1, "市民随手拍": 1, "12345热线": 1, "督查发现": 1, "其他渠道": 0}
    categories = tables[2][1:]
    assert categories[0][1] == "暴露垃圾（0102）" and categories[0][3] == "3"
    assert categories[0][4] == "75.0%"


def test_the_circular_names_units_cases_deadlines_and_praise(
    client: TestClient, day_cases: dict[str, int]
) -> None:
    docs = by_kind(_make(client).json()["items"])
    text, tables = docx_text(client.get(docs[("circular", "docx")]["href"]).content)
    assert "督查通报" in text and "通报表扬" in text
    units = {r[0]: r[2:] for r in tables[0][1:]}
    # communities of the street and departments, with overdue / reworked / recurring
    assert units["环卫所"] == ["2", "1", "0"]
    assert units["乙社区环卫组"] == ["0", "0", "1"]
    listed = "\n".join("\t".join(r) for t in tables[1:] for r in t)
    assert str(day_cases["overdue"]) in listed and "经八路与金水路交叉口东南角" in listed
    assert "https://img.example.cn/p/1.jpg" in listed
    assert str(day_cases["rework"]) in listed and "农业路38号" in listed
    # the units are given until the third working day after the day (Fri → Wed)
    assert "2026-11-25" in text
    praise = tables[-1]
    assert praise[0][0] == "单位" and praise[1][0] == "城管执法中队" and praise[1][4] == "100.0%"
    words = pdf_text(client.get(docs[("circular", "pdf")]["href"]).content)
    assert str(day_cases["overdue"]) in words and "通报表扬" in words


def test_the_ledger_is_the_days_cases_with_names_masked(
    client: TestClient, day_cases: dict[str, int]
) -> None:
    docs = by_kind(_make(client).json()["items"])
    raw = client.get(docs[("ledger", "xlsx")]["href"]).content
    sheet = load_workbook(__import__("io").BytesIO(raw)).active
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][0] == "案件编号"
    ids = {int(r[0]) for r in rows[1:]}
    assert ids == {day_cases[k] for k in ("overdue", "closed", "rework", "recurring")}


def test_a_document_is_kept_as_issued_and_regenerated_as_the_next_issue(
    client: TestClient, session: Session, day_cases: dict[str, int], case_city: Registry
) -> None:
    docs = by_kind(_make(client).json()["items"])
    first = docs[("brief", "docx")]
    before = client.get(first["href"]).content
    # a new case of the day changes the data, not the issued document
    add_case(session, case_city.city, A1, at(DAY, 17), at(DAY, 18), source="citizen")
    session.commit()
    assert client.get(first["href"]).content == before
    again = client.post(f"/api/briefs/{first['id']}/regenerate")
    assert again.status_code == 201, again.text
    second = again.json()
    assert second["issue"] == 2 and second["data_version"] != first["data_version"]
    _, tables = docx_text(client.get(second["href"]).content)
    assert int({r[0]: r[1] for r in tables[0]}["新发现问题"]) == 5
    listed = client.get("/api/briefs", params={"scope": STREET, "kind": "brief"}).json()
    issues = sorted(d["issue"] for d in listed["items"] if d["format"] == "docx")
    assert issues == [1, 2]
    stored = session.get(Document, first["id"])
    assert stored is not None and stored.sha256 == first["sha256"]


def test_bad_scope_and_future_day_are_refused_and_nothing_is_stored(
    client: TestClient, session: Session
) -> None:
    unknown = client.post("/api/briefs", json={"scope": "41019999999999", "date": "2026-11-20"})
    assert unknown.status_code == 404 and unknown.json()["field"] == "scope"
    unit = client.post("/api/briefs", json={"scope": A1, "date": "2026-11-20"})
    assert unit.status_code == 422 and unit.json()["field"] == "scope"
    future = client.post("/api/briefs", json={"scope": STREET, "date": "2099-01-01"})
    assert future.status_code == 422 and future.json()["field"] == "date"
    assert session.scalar(select(func.count()).select_from(Document)) == 0
    assert client.get("/api/briefs/999999").status_code == 404


def test_readers_see_their_scope_only_and_only_leaders_generate(client: TestClient) -> None:
    docs = by_kind(_make(client).json()["items"])
    other = client.post("/api/briefs", json={"scope": DISTRICT, "date": DAY.isoformat()})
    assert other.status_code == 201
    leader = headers_of(client, "leader", scope_grids=[COMM_A])
    dispatcher = headers_of(client, "dispatcher", scope_grids=[STREET])
    inspector = headers_of(client, "inspector")
    department = headers_of(client, "department")
    # a dispatcher of the street reads the street's documents, not the district's
    seen = client.get("/api/briefs", headers=dispatcher).json()["items"]
    assert seen and {d["scope"] for d in seen} == {STREET}
    assert client.get(docs[("brief", "pdf")]["href"], headers=dispatcher).status_code == 200
    district_doc = by_kind(other.json()["items"])[("brief", "pdf")]
    assert client.get(district_doc["href"], headers=dispatcher).status_code == 404
    # a community leader sees none of the street's; may not make the street's set
    assert client.get("/api/briefs", headers=leader).json()["items"] == []
    refused = client.post(
        "/api/briefs", json={"scope": STREET, "date": DAY.isoformat()}, headers=leader
    )
    assert refused.status_code == 403 and refused.json()["field"] == "scope"
    # inspectors read city-wide, never generate; department staff cannot read at all
    assert len(client.get("/api/briefs", headers=inspector).json()["items"]) == 14
    made = client.post(
        "/api/briefs", json={"scope": STREET, "date": "2026-11-19"}, headers=inspector
    )
    assert made.status_code == 403 and made.json()["field"] == "permission"
    assert (
        client.post(
            f"/api/briefs/{docs[('brief', 'pdf')]['id']}/regenerate", headers=inspector
        ).status_code
        == 403
    )
    assert client.get("/api/briefs", headers=department).status_code == 403


def test_registered_sections_are_rendered(client: TestClient) -> None:
    def campaigns(session, settings, scope, period):  # noqa: ANN001, ANN202
        return [{"专项行动": "百日会战", "目标": "7月20日前全部完成", "进度": "80%"}]

    def orders(session, settings, scope, period):  # noqa: ANN001, ANN202
        return None  # nothing to say: no section

    sections.register("campaigns", campaigns)
    sections.register("supervision", orders)
    try:
        docs = by_kind(_make(client, formats=["docx"]).json()["items"])
    finally:
        sections.unregister("campaigns")
        sections.unregister("supervision")
    assert set(docs) == {("brief", "docx"), ("circular", "docx"), ("ledger", "xlsx")}
    text, tables = docx_text(client.get(docs[("brief", "docx")]["href"]).content)
    assert "专项行动进展" in text
    assert ["百日会战", "7月20日前全部完成", "80%"] in tables[-1]
    circular, _ = docx_text(client.get(docs[("circular", "docx")]["href"]).content)
    assert "督办事项" not in circular
    with pytest.raises(ValueError):
        sections.register("nonsense", campaigns)


def test_week_and_month_documents(client: TestClient) -> None:
    week = client.post(
        "/api/briefs",
        json={"scope": STREET, "date": DAY.isoformat(), "period": "week", "formats": ["docx"]},
    )
    assert week.status_code == 201
    brief = by_kind(week.json()["items"])[("brief", "docx")]
    assert brief["period"] == "2026-W47" and brief["first_day"] == "2026-11-16"
    api = client.get(
        f"/api/assessment/figures/grid/{STREET}", params={"period": "2026-W47"}
    ).json()["figures"]
    text, tables = docx_text(client.get(brief["href"]).content)
    assert int({r[0]: r[1] for r in tables[0]}["新发现问题"]) == api["reported"]
    assert "较上周" in tables[0][0][2]
    month = client.post(
        "/api/briefs",
        json={"scope": STREET, "date": DAY.isoformat(), "period": "month", "formats": ["html"]},
    )
    assert month.status_code == 201
    assert by_kind(month.json()["items"])[("brief", "html")]["period"] == "2026-11"


def test_the_set_shows_running_campaigns_and_open_supervision_orders(
    client: TestClient, day_cases: dict[str, int], settings: AppSettings
) -> None:
    """The brief's 专项行动进展 and the circular's 督办事项 come from the campaigns and the
    supervision orders of the scope, as their own APIs show them."""
    from service.briefs.figures import today

    day = today(settings)
    order = client.post(
        "/api/orders",
        json={
            "case_ids": [day_cases["overdue"]],
            "unit_kind": "department",
            "unit": "环卫所",
            "demand": "请于三日内清理完毕并反馈",
            "deadline": (at(day, 9) + timedelta(days=3)).isoformat(),
        },
    )
    assert order.status_code == 201, order.text
    campaign = client.post(
        "/api/campaigns",
        json={
            "name": "双迎攻坚占道经营整治",
            "start": (day - timedelta(days=10)).isoformat(),
            "end": (day + timedelta(days=10)).isoformat(),
            "scope": {"grids": [STREET]},
            "targets": [{"kind": "close_rate", "goal": 1}],
        },
    )
    assert campaign.status_code == 201, campaign.text
    progress = client.get(f"/api/campaigns/{campaign.json()['id']}/progress").json()
    r = client.post(
        "/api/briefs", json={"scope": STREET, "date": day.isoformat(), "formats": ["docx"]}
    )
    assert r.status_code == 201, r.text
    docs = by_kind(r.json()["items"])
    text, tables = docx_text(client.get(docs[("brief", "docx")]["href"]).content)
    assert "专项行动进展" in text
    rows = [row for t in tables for row in t if row and row[0] == "双迎攻坚占道经营整治"]
    assert len(rows) == 1
    last = progress["targets"][0]["days"][-1]  # the campaign API's figure of the same day
    assert rows[0][-1] == ("按计划" if last["on_track"] else "滞后")
    text, tables = docx_text(client.get(docs[("circular", "docx")]["href"]).content)
    assert "督办事项" in text
    number = order.json()["number"]
    rows = [row for t in tables for row in t if row and row[0] == number]
    assert len(rows) == 1
    assert "请于三日内清理完毕并反馈" in rows[0] and str(day_cases["overdue"]) in rows[0][-1]
