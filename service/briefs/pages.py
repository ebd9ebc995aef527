"""The documents' wording, pictures and HTML/PDF renderings.

HTML is rendered from the Jinja2 templates under ``templates/`` with every picture inline (data
URLs), so one file is the whole document; the PDF is WeasyPrint's rendering of the same HTML,
with the CJK font embedded (a subset) and no network access: anything but a data URL is
refused, so a photo link never makes the renderer fetch a URL.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from service.briefs import charts

TEMPLATES = Path(__file__).parent / "templates"


@lru_cache(maxsize=1)
def _env() -> Environment:
    return Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html", "j2"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def _pct(v: float | None) -> str:
    return "—" if v is None else f"{v * 100:.1f}%"


def _change(c: dict[str, Any]) -> str:
    if c["change"] > 0:
        return f"增加{c['change']}件"
    if c["change"] < 0:
        return f"减少{-c['change']}件"
    return "持平"


def _patrol(p: dict[str, Any]) -> str:
    """The coverage sentence: a grid counts as patrolled when visited on any day of the
    period; a week or month adds the daily rate, and a month's area share is a daily mean."""
    if not p["available"]:
        return "本期无巡查覆盖数据。"
    share = "日均覆盖率" if p.get("share_is_daily_mean") else "平均覆盖率"
    text = (
        f"辖区单元网格 {p['grids']} 个，本期巡查到 {p['visited']} 个，{share} "
        f"{_pct(p['mean_share'])}，巡查盲区 {p['blind_count']} 个"
    )
    if "days" in p:
        text += (
            f"（任一天巡查到即计为已巡查）；网格日均巡查率 {_pct(p['days_share'])}"
            f"（统计 {p['days']} 天）"
        )
    return text + "。"


def wording(d: dict[str, Any]) -> dict[str, str]:
    """The documents' sentences, shared by the HTML and DOCX renderings."""
    if d["kind"] == "brief":
        rows = {r["key"]: r for r in d["headline"]["rows"]}
        rates = {r["key"]: r["value"] for r in d["headline"]["rates"]}
        new = rows["reported"]
        changes = "，".join(f"{c['label']}{_change(c)}" for c in new["changes"])
        summary = (
            f"本期{d['scope_name']}共发现城市管理问题{new['value']}件"
            + (f"（{changes}）" if changes else "")
            + f"，立案{rows['registered']['value']}件，派遣{rows['dispatched']['value']}件，"
            f"结案{rows['closed']['value']}件，超期未结{rows['overdue_open']['value']}件；"
            f"结案率{_pct(rates.get('close_rate'))}，按期结案率{_pct(rates.get('on_time_close_rate'))}。"
        )
        if d["categories"]:
            top = d["categories"][0]
            summary += f"高发问题为{top['name']}，占{_pct(top['share'])}。"
        return {"summary": summary, "patrol": _patrol(d["patrol"])}
    worst = len(d["units"])
    return {
        "opening": (
            f"根据数字化城市管理系统数据，现将{d['subtitle'].split('（')[0]}{d['scope_name']}"
            f"问题整改情况通报如下。本期共有{worst}个单位存在超期未结、返工或重复发生问题，"
            "请各单位对标自查、倒排进度，按期完成整改。"
        ),
        "praise": "以下单位按期结案率位居前列，予以通报表扬，请各单位学习借鉴。",
    }


def pictures(d: dict[str, Any], overlay: dict[str, Any] | None, outlines: list) -> dict[str, bytes]:
    """The brief's charts and map as PNG bytes (the circular has none)."""
    if d["kind"] != "brief":
        return {}
    head = d["headline"]
    labels = [r["name"] for r in head["rows"]]
    series = {"本期": [r["value"] for r in head["rows"]]}
    for i, c in enumerate(head["comparisons"]):
        series[c["label"].removeprefix("较")] = [r["changes"][i]["value"] for r in head["rows"]]
    return {
        "compare": charts.compare(labels, series, "案件数量对比"),
        "sources": charts.bars(
            [s["name"] for s in d["sources"]], [s["count"] for s in d["sources"]], "问题来源"
        ),
        "categories": charts.shares(
            [c["name"] for c in d["categories"]],
            [c["count"] for c in d["categories"]],
            "高发问题（前五位）",
        ),
        "map": charts.heat_map(outlines, overlay, f"{d['scope_name']}问题热力图"),
    }


def fonts() -> str:
    """The CSS font list: the installed CJK font first."""
    found = charts.cjk_font()
    names = [f'"{found}"'] if found else []
    return ", ".join([*names, '"Noto Sans CJK SC"', '"WenQuanYi Zen Hei"', "sans-serif"])


def html(d: dict[str, Any], images: dict[str, bytes], version: str) -> str:
    """The document as one HTML page (pictures inline)."""
    template = _env().get_template(f"{d['kind']}.html.j2")
    return template.render(
        d=d,
        text=wording(d),
        images={k: charts.data_url(v) for k, v in images.items()},
        version=version,
        fonts=fonts(),
    )


def _offline_fetcher() -> Any:
    """WeasyPrint's URL fetcher for data URLs only: nothing is fetched from the network (a
    photo's link stays a link)."""
    from weasyprint.urls import URLFetcher

    return URLFetcher(allowed_protocols={"data"}, timeout=5)


def pdf(page: str) -> bytes:
    """The HTML page as PDF (WeasyPrint; fonts embedded)."""
    from weasyprint import HTML

    out = HTML(string=page, url_fetcher=_offline_fetcher()).write_pdf()
    assert out is not None
    return out
