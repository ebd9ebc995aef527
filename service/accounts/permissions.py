"""Permissions (what an action needs) and the roles seeded for every city.

Roles are data: the seed below is written once per city and an admin may edit it afterwards
(``PUT /api/roles/{key}``). Permissions are the fixed vocabulary routes declare; each has a
Chinese and an English description for the admin pages and for 403 answers.
"""

from __future__ import annotations

PERMISSIONS: dict[str, tuple[str, str]] = {
    "grids.read": ("查看网格边界", "read grid boundaries"),
    "grids.edit": ("编辑网格", "create, edit, version and retire grids"),
    "grids.import": ("导入网格、热点与街道", "import grids, hotspots and streets from files"),
    "hotspots.edit": ("编辑热点", "create, edit and end hotspots"),
    "streets.edit": ("编辑街道", "import and edit streets"),
    "catalogue.edit": ("编辑案件类别与派遣规则", "edit case categories and routing rules"),
    "cases.read": ("查看案件", "read cases in scope"),
    "cases.report": ("上报问题", "report problems"),
    "cases.import": ("批量导入案件", "import cases in bulk"),
    "cases.export": ("导出问题台账", "export the ledger"),
    "cases.register": ("立案", "register reports as cases"),
    "cases.reject": ("不予立案", "reject reports"),
    "cases.merge": ("合并案件", "merge duplicate cases"),
    "cases.dispatch": ("派遣", "dispatch and re-dispatch cases"),
    "cases.extend": ("延期", "extend deadlines"),
    "cases.handle": ("处置", "handle dispatched cases"),
    "cases.feedback": ("反馈", "report a case handled"),
    "cases.return": ("退单", "send a wrongly dispatched case back"),
    "cases.verify": ("核查结案", "verify fixes: close or send back for rework"),
    "cases.reopen": ("重新打开", "reopen closed cases"),
    "cases.evaluate": ("综合评价", "evaluate closed cases (satisfaction and quality)"),
    "people.read": ("查看个人信息", "see reporters' and workers' names and phones unmasked"),
    "patrol.read": ("查看巡查", "read workers, tracks and coverage"),
    "patrol.edit": ("管理网格员与手机", "edit workers and their phones"),
    "patrol.fixes": ("上传巡查轨迹", "start patrol sessions and upload GPS fixes"),
    "maps.read": ("查看热力图与案件瓦片", "read heat layers, case tiles and the map page"),
    "users.admin": ("管理用户、角色与密钥", "manage users, roles and API keys"),
    "audit.read": ("查看审计日志", "read the audit log"),
    "assessment.schemes": ("编辑考核评分方案", "add versions of the scoring scheme"),
    "assessment.publish": ("发布红黄榜", "publish and correct the red/yellow lists"),
    "assessment.rounds": (
        "组织交叉考核",
        "create cross-scoring inspection rounds, edit their rotation, open and close them",
    ),
    "assessment.score": ("交叉考核打分", "fill checklists in inspection rounds one is assigned to"),
    "assessment.checklists": ("编辑考核细则", "publish new versions of inspection checklists"),
    "orders.issue": (
        "签发督办单",
        "issue, accept and send back supervision orders; issue or dismiss proposed ones",
    ),
    "orders.answer": (
        "办理督办单",
        "acknowledge and answer the supervision orders of one's own department or grids",
    ),
    "orders.rules": ("编辑督办升级规则", "edit the escalation rules and run the sweep"),
    "campaigns.manage": (
        "组织专项行动",
        "create and edit campaigns (专项行动): scope, targets, milestones and owners; delete "
        "one before it starts",
    ),
    "briefs.read": (
        "查看工作简报、督查通报与问题台账",
        "read and download the issued daily briefs, circulars and ledgers in scope",
    ),
    "briefs.generate": ("生成工作简报与督查通报", "generate and regenerate the daily set"),
    "photos.review": (
        "查看存疑照片",
        "list the photos the evidence check flagged (late, too far, reused) in scope",
    ),
    "notify.manage": (
        "管理消息推送",
        "manage webhook subscriptions of any scope and read every delivery",
    ),
    "notify.subscribe": ("订阅消息推送", "subscribe webhooks for one's own scope"),
}

READ_ALL = ("grids.read", "cases.read", "cases.export", "patrol.read", "maps.read")

# (key, Chinese name, English name, permissions)
ROLE_SEED: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    ("admin", "管理员", "administrator", tuple(PERMISSIONS)),
    (
        "leader",
        "领导",
        "leader",
        (
            *READ_ALL,
            "people.read",
            "audit.read",
            "assessment.publish",
            "assessment.rounds",
            "assessment.score",
            "cases.evaluate",
            "orders.issue",
            "orders.answer",
            "campaigns.manage",
            "briefs.read",
            "briefs.generate",
            "notify.subscribe",
            "photos.review",
        ),
    ),
    (
        "intake",
        "受理员/值班长",
        "intake and shift lead",
        (
            "grids.read",
            "maps.read",
            "cases.read",
            "cases.report",
            "cases.register",
            "cases.reject",
            "cases.merge",
            "cases.evaluate",
            "people.read",
            "photos.review",
        ),
    ),
    (
        "dispatcher",
        "派遣员",
        "dispatcher",
        (
            "grids.read",
            "maps.read",
            "patrol.read",
            "cases.read",
            "cases.dispatch",
            "cases.extend",
            "people.read",
            "briefs.read",
            "notify.subscribe",
            "photos.review",
        ),
    ),
    (
        "department",
        "专业部门",
        "department staff",
        (
            "grids.read",
            "cases.read",
            "cases.handle",
            "cases.feedback",
            "cases.return",
            "orders.answer",
            "notify.subscribe",
        ),
    ),
    (
        "grid_worker",
        "网格员/监督员",
        "grid worker / supervisor",
        (
            "grids.read",
            "maps.read",
            "cases.read",
            "cases.report",
            "cases.verify",
            "patrol.fixes",
            "orders.answer",
        ),
    ),
    (
        "inspector",
        "督查员",
        "inspector",
        (
            "grids.read",
            "maps.read",
            "patrol.read",
            "cases.read",
            "cases.report",
            "assessment.score",
            "briefs.read",
        ),
    ),
    (
        "gis_editor",
        "GIS编辑",
        "GIS editor",
        (
            "grids.read",
            "maps.read",
            "grids.edit",
            "grids.import",
            "hotspots.edit",
            "streets.edit",
        ),
    ),
)

# What each workflow action needs (the case routes check it per action).
ACTION_PERMISSIONS: dict[str, str] = {
    "register": "cases.register",
    "reject": "cases.reject",
    "merge": "cases.merge",
    "dispatch": "cases.dispatch",
    "extend": "cases.extend",
    "handle": "cases.handle",
    "feedback": "cases.feedback",
    "return": "cases.return",
    "verify": "cases.verify",
    "rework": "cases.verify",
    "reopen": "cases.reopen",
    # a user who reported the case may evaluate it without this (CaseService.act)
    "evaluate": "cases.evaluate",
}


def describe(permission: str) -> str:
    """``permission`` with its Chinese description, for messages."""
    zh, en = PERMISSIONS.get(permission, ("", ""))
    return f"{permission} ({zh} / {en})" if zh else permission
