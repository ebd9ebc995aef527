"""The case workflow (GB/T 30428.8): states, actions and the only legal transitions.

report → register → dispatch → handle → feedback → verify & close, plus reject (not a case),
rework (verification fails: back to handling), extend (a new deadline, with a reason), reopen
(a closed case comes back to dispatch), merge (a duplicate folds into another case) and return
(退单: the department sends a wrongly dispatched case back to the dispatcher, with a reason —
the case is registered again, dispatched to nobody, until the dispatcher sends it on), and
evaluate (综合评价, the seventh step: a closed case is rated once — the reporter's satisfaction
and the quality of the fix — and stays closed).
"""

from __future__ import annotations

from dataclasses import dataclass

STATUSES: tuple[str, ...] = (
    "reported",  # 信息收集: received, not yet accepted as a case
    "registered",  # 案卷建立: accepted (立案)
    "dispatched",  # 任务派遣: sent to the handling department
    "handling",  # 任务处理: the department is working on it
    "fed_back",  # 处理反馈: the department says it is fixed; awaiting verification
    "closed",  # 核查结案: verified and closed
    "rejected",  # 不予立案: not a case
    "merged",  # folded into another case as a duplicate
)
OPEN_STATUSES: tuple[str, ...] = ("reported", "registered", "dispatched", "handling", "fed_back")
# the same as a literal SQL list, so the planner can use the partial index on open cases
OPEN_SQL = "(" + ", ".join(f"'{s}'" for s in OPEN_STATUSES) + ")"

# 综合评价: the reporter's satisfaction (three levels) and the quality of the fix (1–5 points)
SATISFACTION_LEVELS: tuple[str, ...] = ("满意", "基本满意", "不满意")
SATISFIED: tuple[str, ...] = ("满意", "基本满意")
QUALITY_RANGE: tuple[int, int] = (1, 5)

LABELS_ZH = {
    "reported": "上报",
    "registered": "立案",
    "dispatched": "已派遣",
    "handling": "处理中",
    "fed_back": "已反馈",
    "closed": "已结案",
    "rejected": "不予立案",
    "merged": "已合并",
}


@dataclass(frozen=True)
class Transition:
    """An action moving a case from one of ``sources`` to ``target`` (None: stays put)."""

    action: str
    sources: tuple[str, ...]
    target: str | None
    needs_note: bool = False


TRANSITIONS: dict[str, Transition] = {
    t.action: t
    for t in (
        Transition("register", ("reported",), "registered"),
        Transition("reject", ("reported",), "rejected", needs_note=True),
        Transition("dispatch", ("registered", "dispatched"), "dispatched"),
        Transition("handle", ("dispatched",), "handling"),
        Transition("feedback", ("dispatched", "handling"), "fed_back"),
        Transition("return", ("dispatched", "handling"), "registered", needs_note=True),
        Transition("verify", ("fed_back",), "closed"),
        Transition("rework", ("fed_back",), "handling", needs_note=True),
        Transition("extend", ("registered", "dispatched", "handling"), None, needs_note=True),
        Transition("reopen", ("closed",), "dispatched", needs_note=True),
        Transition("merge", OPEN_STATUSES, "merged"),
        Transition("evaluate", ("closed",), None),
    )
}


class IllegalTransition(Exception):
    """``action`` is not allowed from ``status``; ``allowed`` lists what is."""

    def __init__(self, status: str, action: str) -> None:
        self.status = status
        self.action = action
        self.allowed = allowed_actions(status)
        super().__init__(
            f"cannot {action} a case that is {status}; allowed: "
            f"{', '.join(self.allowed) or 'nothing (final state)'}"
        )


def allowed_actions(status: str) -> list[str]:
    """Actions legal from ``status``, in workflow order."""
    return [a for a, t in TRANSITIONS.items() if status in t.sources]


def next_status(status: str, action: str) -> str:
    """The status after ``action``; raises ``IllegalTransition`` or ``KeyError`` (unknown)."""
    if action not in TRANSITIONS:
        raise KeyError(action)
    transition = TRANSITIONS[action]
    if status not in transition.sources:
        raise IllegalTransition(status, action)
    return transition.target or status
