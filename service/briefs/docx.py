"""The documents as Word files (python-docx): what offices edit and forward.

The same data, wording and pictures as the HTML rendering; the body font is the CJK font for
East Asian text (``w:eastAsia``), so Word shows the Chinese in it.
"""

from __future__ import annotations

import copy
import io
from typing import Any

from docx import Document
from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.oxml.ns import qn
from docx.shared import Cm, Pt, RGBColor
from docx.table import _Cell

from service.briefs import charts
from service.briefs.pages import wording

RED = RGBColor(0xB3, 0x00, 0x00)


def _pct(v: float | None) -> str:
    return "—" if v is None else f"{v * 100:.1f}%"


def _font(doc: Any) -> None:
    style = doc.styles["Normal"]
    family = charts.cjk_font() or "SimSun"
    style.font.name = family
    style.font.size = Pt(10.5)
    style.element.rPr.rFonts.set(qn("w:eastAsia"), family)
    for name in ("Heading 1", "Heading 2", "Heading 3", "Title"):
        s = doc.styles[name]
        s.font.name = family
        rpr = s.element.get_or_add_rPr()
        rpr.get_or_add_rFonts().set(qn("w:eastAsia"), family)


def _table(doc: Any, header: list[str], rows: list[list[Any]]) -> None:
    table = doc.add_table(rows=1, cols=len(header))
    table.style = "Table Grid"
    for cell, text in zip(table.rows[0].cells, header, strict=True):
        cell.text = text
        for run in cell.paragraphs[0].runs:
            run.bold = True
    if rows:
        _fill(table, rows)
    doc.add_paragraph()


def _fill(table: Any, rows: list[list[Any]]) -> None:
    """The body rows, each a copy of one prototype row with its texts replaced: setting
    ``cell.text`` cell by cell costs ~1 ms a row, and a circular has thousands of cells."""
    proto = table.add_row()
    for cell in proto.cells:
        cell.text = "x"
    tr = proto._tr
    tr.getparent().remove(tr)
    for t in tr.iter(qn("w:t")):
        t.set(qn("xml:space"), "preserve")
    for row in rows:
        new = copy.deepcopy(tr)
        table._tbl.append(new)
        for tc, t, value in zip(new.tc_lst, list(new.iter(qn("w:t"))), row, strict=True):
            text = "" if value is None else str(value)
            if "\n" in text or "\t" in text:  # line breaks and tabs need their own elements
                _Cell(tc, table).text = text
            else:
                t.text = text


def _picture(doc: Any, png: bytes) -> None:
    doc.add_picture(io.BytesIO(png), width=Cm(15.5))
    doc.paragraphs[-1].alignment = WD_ALIGN_PARAGRAPH.CENTER


def _head(doc: Any, d: dict[str, Any], version: str) -> None:
    title = doc.add_paragraph()
    title.alignment = WD_ALIGN_PARAGRAPH.CENTER
    run = title.add_run(d["title"])
    run.bold, run.font.size, run.font.color.rgb = True, Pt(20), RED
    sub = doc.add_paragraph(d["subtitle"])
    sub.alignment = WD_ALIGN_PARAGRAPH.CENTER
    meta = doc.add_paragraph(
        f"统计范围：{d['scope_name']}（{d['scope']}）　统计时段：{d['first_day']} 至 "
        f"{d['last_day']}　数据版本：{version[:12]}"
    )
    meta.alignment = WD_ALIGN_PARAGRAPH.CENTER
    for r in meta.runs:
        r.font.size = Pt(9)


def _sections(doc: Any, d: dict[str, Any]) -> None:
    for s in d["sections"]:
        doc.add_heading(s["title"], level=2)
        keys = list(s["rows"][0].keys())
        _table(doc, keys, [[r.get(k, "") for k in keys] for r in s["rows"]])


def _brief(doc: Any, d: dict[str, Any], images: dict[str, bytes]) -> None:
    text = wording(d)
    head = d["headline"]
    doc.add_heading("一、总体情况", level=2)
    doc.add_paragraph(text["summary"])
    header = ["指标", "本期"] + [f"{c['label']}（{c['period']}）" for c in head["comparisons"]]
    rows: list[list[Any]] = []
    for r in head["rows"]:
        rows.append(
            [r["name"], r["value"]]
            + [
                f"{c['value']}（{'+' if c['change'] > 0 else ''}{c['change']}）"
                for c in r["changes"]
            ]
        )
    for r in head["rates"]:
        rows.append([r["name"], _pct(r["value"])] + [""] * len(head["comparisons"]))
    _table(doc, header, rows)
    _picture(doc, images["compare"])
    doc.add_heading("二、问题来源", level=2)
    _table(
        doc,
        ["来源", "数量", "占比"],
        [[s["name"], s["count"], _pct(s["share"])] for s in d["sources"]],
    )
    _picture(doc, images["sources"])
    doc.add_heading("三、高发问题（前五位小类）", level=2)
    if d["categories"]:
        _table(
            doc,
            ["序号", "类别", "大类", "数量", "占比"],
            [
                [i, f"{c['name']}（{c['code']}）", c["major"] or "", c["count"], _pct(c["share"])]
                for i, c in enumerate(d["categories"], 1)
            ],
        )
        _picture(doc, images["categories"])
    else:
        doc.add_paragraph("本期无新发现问题。")
    doc.add_heading("四、热点区域新发问题", level=2)
    if d["hotspots"]:
        _table(
            doc,
            ["热点", "类型", "新发现问题"],
            [[h["name"], h["kind"], h["count"]] for h in d["hotspots"]],
        )
    else:
        doc.add_paragraph("本期热点区域无新发问题。")
    _picture(doc, images["map"])
    doc.add_heading("五、巡查覆盖与盲区", level=2)
    p = d["patrol"]
    doc.add_paragraph(text["patrol"])
    if p["available"] and p["blind"]:
        _table(
            doc,
            ["盲区网格", "名称", "新发现问题"],
            [[b["code"], b["name"] or "", b["new"]] for b in p["blind"]],
        )
    doc.add_heading("六、红黄榜", level=2)
    st = d["standing"]
    if st["red"] or st["yellow"]:
        rows = [
            ["红榜", f"{r['name']}（{r['code']}）", r["total"], r["grade"] or "", r["rank"]]
            for r in st["red"]
        ]
        rows += [
            ["黄榜", f"{r['name']}（{r['code']}）", r["total"], r["grade"] or "", r["rank"]]
            for r in st["yellow"]
        ]
        _table(doc, ["榜单", d["unit_level_zh"], "得分", "等级", "排名"], rows)
        doc.add_paragraph(
            "以已发布的红黄榜为准。" if st["published"] else "按本期数据即时计算，以正式发布为准。"
        )
    else:
        doc.add_paragraph("本期暂无红黄榜排名。")
    _sections(doc, d)


def _circular(doc: Any, d: dict[str, Any]) -> None:
    text = wording(d)
    doc.add_paragraph(text["opening"])
    doc.add_heading("一、通报批评", level=2)
    if d["units"]:
        _table(
            doc,
            ["单位", "类型", "超期未结", "返工", "重复发生"],
            [
                [u["name"], u["kind"], u["overdue_open"], u["reworked"], u["recurring"]]
                for u in d["units"]
            ],
        )
        doc.add_paragraph(
            f"请以上单位于 {d['deadline']} 前完成整改并反馈结果，整改一个、销号一个。"
        )
    else:
        doc.add_paragraph("本期无超期、返工或重复发生的问题。")
    doc.add_heading("二、问题清单", level=2)
    for i, group in enumerate(d["cases"], 1):
        doc.add_heading(f"（{i}）{group['name']}（{len(group['items'])} 件）", level=3)
        if not group["items"]:
            doc.add_paragraph("无。")
            continue
        _table(
            doc,
            ["案件编号", "类别", "地址", "责任单位", "原处置时限", "整改时限", "照片"],
            [
                [
                    c["id"],
                    c["category"],
                    c["address"],
                    c["department"],
                    c["deadline_at"],
                    d["deadline"],
                    "\n".join(c["photos"]),
                ]
                for c in group["items"]
            ],
        )
    doc.add_heading("三、通报表扬", level=2)
    if d["praise"]:
        doc.add_paragraph(text["praise"])
        _table(
            doc,
            ["单位", "类型", "应结案", "结案", "按期结案率", "结案率"],
            [
                [
                    p["name"],
                    p["kind"],
                    p["due"],
                    p["closed"],
                    _pct(p["on_time_close_rate"]),
                    _pct(p["close_rate"]),
                ]
                for p in d["praise"]
            ],
        )
    else:
        doc.add_paragraph("本期无应结案件，暂不表扬。")
    _sections(doc, d)


def render(d: dict[str, Any], images: dict[str, bytes], version: str) -> bytes:
    """The brief or circular ``d`` as DOCX bytes."""
    doc = Document()
    _font(doc)
    core = doc.core_properties
    core.title = f"{d['title']} {d['subtitle']}"
    core.subject = d["kind_zh"]
    core.keywords = f"{d['scope']} {d['period']} {version}"
    _head(doc, d, version)
    if d["kind"] == "brief":
        _brief(doc, d, images)
    else:
        _circular(doc, d)
    buf = io.BytesIO()
    doc.save(buf)
    return buf.getvalue()
