"""The case category catalogue, hotspot kinds and routing rules — all data, seeded per city.

Event codes are the standard 2-digit major + 2-digit minor classes (``0102`` 暴露垃圾, 99 =
other); component (部件) codes carry a ``B`` prefix (``B0101`` 上水井盖) so the two families never
collide. Deadlines are in working hours or working days on the working-time clock.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from service.accounts.audit import AuditLog, snapshot
from service.accounts.principal import Principal
from service.db.models import Category, HotspotKind, RoutingRule
from service.db.versions import change_counters
from service.errors import Conflict, NotFound
from service.settings import AppSettings

# (code, family, major code, major name, name, deadline amount, unit, department, required)
CATEGORY_SEED: tuple[tuple[str, str, str, str, str, float, str, str, tuple[str, ...]], ...] = (
    ("0101", "event", "01", "市容环境", "私搭乱建", 5, "days", "城管执法局", ()),
    ("0102", "event", "01", "市容环境", "暴露垃圾", 2, "hours", "环卫所", ()),
    ("0103", "event", "01", "市容环境", "积存渣土", 1, "days", "环卫所", ()),
    ("0104", "event", "01", "市容环境", "道路不洁", 2, "hours", "环卫所", ()),
    ("0105", "event", "01", "市容环境", "乱堆物料", 1, "days", "城管执法中队", ()),
    ("0106", "event", "01", "市容环境", "焚烧垃圾树叶", 2, "hours", "城管执法中队", ()),
    ("0199", "event", "01", "市容环境", "其他市容环境问题", 2, "days", "城管执法中队", ()),
    ("0201", "event", "02", "宣传广告", "非法小广告", 1, "days", "城管执法中队", ()),
    ("0202", "event", "02", "宣传广告", "违规户外广告", 3, "days", "城市管理局广告科", ()),
    ("0203", "event", "02", "宣传广告", "违规牌匾标识", 3, "days", "城管执法中队", ("shop_name",)),
    ("0299", "event", "02", "宣传广告", "其他宣传广告问题", 3, "days", "城管执法中队", ()),
    ("0301", "event", "03", "施工管理", "施工扰民", 4, "hours", "生态环境局", ()),
    ("0302", "event", "03", "施工管理", "施工占道", 1, "days", "住房和城乡建设局", ()),
    ("0303", "event", "03", "施工管理", "工地扬尘", 4, "hours", "住房和城乡建设局", ("site_name",)),
    ("0304", "event", "03", "施工管理", "施工废弃料", 1, "days", "住房和城乡建设局", ()),
    ("0399", "event", "03", "施工管理", "其他施工管理问题", 2, "days", "住房和城乡建设局", ()),
    ("0401", "event", "04", "突发事件", "路面塌陷", 2, "hours", "市政工程管理处", ()),
    ("0402", "event", "04", "突发事件", "自来水管破裂", 2, "hours", "供水公司", ()),
    ("0403", "event", "04", "突发事件", "燃气管道破裂", 1, "hours", "燃气公司", ()),
    ("0404", "event", "04", "突发事件", "下水道堵塞或破损", 4, "hours", "市政工程管理处", ()),
    ("0405", "event", "04", "突发事件", "道路积水", 2, "hours", "市政工程管理处", ()),
    ("0406", "event", "04", "突发事件", "火灾", 1, "hours", "消防救援大队", ()),
    ("0499", "event", "04", "突发事件", "其他突发事件", 2, "hours", "应急管理局", ()),
    ("0501", "event", "05", "街面秩序", "无照经营游商", 2, "hours", "城管执法中队", ()),
    ("0502", "event", "05", "街面秩序", "占道经营", 2, "hours", "城管执法中队", ()),
    ("0503", "event", "05", "街面秩序", "店外经营", 2, "hours", "城管执法中队", ()),
    ("0504", "event", "05", "街面秩序", "早夜市", 1, "days", "城管执法中队", ()),
    ("0505", "event", "05", "街面秩序", "黑车拉客", 4, "hours", "交通运输局", ()),
    ("0506", "event", "05", "街面秩序", "露天烧烤", 2, "hours", "城管执法中队", ()),
    ("0599", "event", "05", "街面秩序", "其他街面秩序问题", 1, "days", "城管执法中队", ()),
    ("0601", "event", "06", "其他事件", "焚烧秸秆", 1, "hours", "生态环境局", ()),
    ("0699", "event", "06", "其他事件", "其他", 3, "days", "城市管理局", ()),
    ("B0101", "component", "01", "公用设施", "上水井盖", 2, "days", "供水公司", ()),
    ("B0102", "component", "01", "公用设施", "污水井盖", 2, "days", "市政工程管理处", ()),
    ("B0103", "component", "01", "公用设施", "电力井盖", 2, "days", "供电公司", ()),
    ("B0104", "component", "01", "公用设施", "路灯", 2, "days", "路灯管理所", ()),
    ("B0201", "component", "02", "交通设施", "交通信号灯", 1, "days", "交警支队", ()),
    ("B0202", "component", "02", "交通设施", "交通护栏", 3, "days", "市政工程管理处", ()),
    ("B0203", "component", "02", "交通设施", "公交站亭", 3, "days", "公交公司", ()),
    ("B0301", "component", "03", "市容环境设施", "公共厕所", 1, "days", "环卫所", ()),
    ("B0302", "component", "03", "市容环境设施", "垃圾箱", 1, "days", "环卫所", ()),
    ("B0401", "component", "04", "园林绿化设施", "行道树", 3, "days", "园林局", ()),
    ("B0402", "component", "04", "园林绿化设施", "绿地", 3, "days", "园林局", ()),
    ("B0501", "component", "05", "房屋土地", "空置房屋", 5, "days", "住房和城乡建设局", ()),
    ("B0601", "component", "06", "其他设施", "健身设施", 5, "days", "体育局", ()),
)
LOCAL_CATEGORIES = frozenset({"0601"})  # straw burning: a local addition to the standard

# (key, name, default buffer in metres, default risk weight)
HOTSPOT_KIND_SEED: tuple[tuple[str, str, float, float], ...] = (
    ("farmer_market", "农贸市场", 100.0, 2.0),
    ("rail_corridor", "铁路沿线", 50.0, 1.5),
    ("construction_site", "建筑工地", 150.0, 2.0),
    ("school_gate", "学校门口", 100.0, 1.5),
    ("urban_rural_fringe", "城乡结合部", 0.0, 1.5),
    ("air_quality_point", "空气质量监测点", 300.0, 1.0),
)


# what a patrol cannot be expected to find (漏报数 leaves them out): heard at night, smelt, or
# sudden; a city changes the flag per category (PATCH /api/categories/{code})
NOT_FOR_PATROL = frozenset({"0301", "0403", "0406", "0499"})


def seed_catalogue(session: Session, city: str) -> int:
    """Insert the standard categories and hotspot kinds a city lacks; return rows added."""
    have = set(session.scalars(select(Category.code).where(Category.city == city)))
    added = 0
    for code, family, major, major_name, name, amount, unit, dept, required in CATEGORY_SEED:
        if code in have:
            continue
        session.add(
            Category(
                city=city,
                code=code,
                family=family,
                major_code=major,
                major_name=major_name,
                name=name,
                deadline_amount=amount,
                deadline_unit=unit,
                department=dept,
                required_fields=list(required),
                local=code in LOCAL_CATEGORIES,
                patrol_visible=code not in NOT_FOR_PATROL,
            )
        )
        added += 1
    kinds = set(session.scalars(select(HotspotKind.key).where(HotspotKind.city == city)))
    for key, name, buffer_m, weight in HOTSPOT_KIND_SEED:
        if key not in kinds:
            session.add(
                HotspotKind(
                    city=city,
                    key=key,
                    name=name,
                    default_buffer_m=buffer_m,
                    default_risk_weight=weight,
                )
            )
            added += 1
    session.flush()
    return added


@dataclass(frozen=True)
class Route:
    """Where a case goes and why."""

    department: str
    routed_by: str


class Router:
    """Routing rules of one city: the most specific rule (longest category prefix, then longest
    area prefix, then highest priority) wins; without one, the category's default department.

    A rule with ``hotspot_owner_first`` hands the case to the owner unit of the nearest matched
    hotspot that has one (e.g. a market's management office takes vending next to its market).
    """

    def __init__(self, rules: list[RoutingRule], categories: dict[str, Category]) -> None:
        self.rules = sorted(
            rules,
            key=lambda r: (len(r.category_prefix), len(r.area_prefix), r.priority, -r.id),
            reverse=True,
        )
        self.categories = categories

    def route(
        self, category_code: str, grid_code: str | None, hotspot_owners: list[str | None]
    ) -> Route:
        """Department for a case of ``category_code`` in ``grid_code`` near those hotspots."""
        area = grid_code or ""
        for rule in self.rules:
            if category_code.startswith(rule.category_prefix) and area.startswith(rule.area_prefix):
                owner = next((o for o in hotspot_owners if o), None)
                if rule.hotspot_owner_first and owner:
                    return Route(owner, f"hotspot owner (rule {rule.id})")
                return Route(rule.department, f"rule {rule.id}")
        return Route(self.categories[category_code].department, "category default")

    def route_many(
        self, category_codes: np.ndarray, grid_codes: np.ndarray, owners: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`route` for whole columns (bulk intake): departments and reasons."""
        n = len(category_codes)
        cats = pd.Series(category_codes, dtype=object).astype(str)
        grids = pd.Series(grid_codes, dtype=object).fillna("").astype(str)
        has_owner = pd.Series(owners, dtype=object).notna().to_numpy()
        department = np.full(n, None, dtype=object)
        reason = np.full(n, None, dtype=object)
        left = np.ones(n, dtype=bool)
        for rule in self.rules:  # most specific first: the first rule that matches wins
            hit = left & cats.str.startswith(rule.category_prefix).to_numpy()
            hit &= grids.str.startswith(rule.area_prefix).to_numpy()
            if not hit.any():
                continue
            to_owner = hit & has_owner if rule.hotspot_owner_first else np.zeros(n, dtype=bool)
            department[to_owner] = owners[to_owner]
            reason[to_owner] = f"hotspot owner (rule {rule.id})"
            plain = hit & ~to_owner
            department[plain] = rule.department
            reason[plain] = f"rule {rule.id}"
            left &= ~hit
        defaults = {code: cat.department for code, cat in self.categories.items()}
        department[left] = cats[left].map(defaults).to_numpy(dtype=object)
        reason[left] = "category default"
        return department, reason


def load_router(session: Session, city: str, counters: dict[str, int] | None = None) -> Router:
    """The city's rules and categories, from this process's copy while the catalogue's change
    counters (read in the session's transaction, or passed in) say it is current.

    The copy's rows are transient objects made from plain columns: never attached to any
    session, only read.
    """
    counters = counters or change_counters(session)
    key = (city, counters["categories"], counters["routing_rules"])
    with _ROUTERS_LOCK:
        router = _ROUTERS.get(key)
    if router is None:
        rule_rows = session.execute(
            select(*RoutingRule.__table__.c).where(RoutingRule.city == city)
        )
        cat_rows = session.execute(select(*Category.__table__.c).where(Category.city == city))
        cats = {row.code: Category(**row._mapping) for row in cat_rows}
        router = Router([RoutingRule(**row._mapping) for row in rule_rows], cats)
        with _ROUTERS_LOCK:
            if len(_ROUTERS) >= 16:
                _ROUTERS.clear()
            _ROUTERS[key] = router
    return router


_ROUTERS_LOCK = threading.Lock()
_ROUTERS: dict[tuple[str, int, int], Router] = {}


class Catalogue:
    """Reading and extending one city's categories and routing rules."""

    def __init__(self, session: Session, settings: AppSettings) -> None:
        self.session = session
        self.settings = settings
        self.city = settings.grids.city

    def categories(self) -> list[Category]:
        """Every category, by code."""
        stmt = select(Category).where(Category.city == self.city).order_by(Category.code)
        return list(self.session.scalars(stmt))

    def add_category(self, code: str, *, by: Principal, **values: object) -> Category:
        """Add a local category as ``by`` (audited); ``Conflict`` if the code is taken."""
        if self.session.get(Category, (self.city, code)) is not None:
            raise Conflict(f"category {code} already exists", field="code")
        cat = Category(
            city=self.city, code=code, major_code=code.removeprefix("B")[:2], local=True, **values
        )
        self.session.add(cat)
        self.session.flush()
        AuditLog(self.session, self.settings).record(
            by, "category.create", "category", code, None, snapshot(cat)
        )
        return cat

    def set_patrol_visible(self, code: str, visible: bool, *, by: Principal) -> Category:
        """Whether patrols should see problems of category ``code`` (漏报数 counts only
        those), as ``by`` (audited); ``NotFound`` for an unknown code."""
        cat = self.session.get(Category, (self.city, code))
        if cat is None:
            raise NotFound(f"no category {code!r}", field="code")
        before = snapshot(cat)
        cat.patrol_visible = visible
        self.session.flush()
        AuditLog(self.session, self.settings).record(
            by, "category.update", "category", code, before, snapshot(cat)
        )
        return cat

    def rules(self) -> list[RoutingRule]:
        """Every routing rule, oldest first."""
        stmt = select(RoutingRule).where(RoutingRule.city == self.city)
        return list(self.session.scalars(stmt.order_by(RoutingRule.id)))

    def add_rule(self, *, by: Principal, **values: object) -> RoutingRule:
        """Add a routing rule as ``by`` (audited)."""
        rule = RoutingRule(city=self.city, **values)
        self.session.add(rule)
        self.session.flush()
        AuditLog(self.session, self.settings).record(
            by, "routing_rule.create", "routing_rule", str(rule.id), None, snapshot(rule)
        )
        return rule

    def delete_rule(self, rule_id: int, *, by: Principal) -> None:
        """Remove a routing rule as ``by`` (audited, with the rule as it was), or ``NotFound``."""
        rule = self.session.get(RoutingRule, rule_id)
        if rule is None or rule.city != self.city:
            raise NotFound(f"no routing rule {rule_id}", field="id")
        before = snapshot(rule)
        self.session.delete(rule)
        self.session.flush()
        AuditLog(self.session, self.settings).record(
            by, "routing_rule.delete", "routing_rule", str(rule_id), before, None
        )
