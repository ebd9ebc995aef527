"""The event kinds a subscription may ask for: a documented list, extended by adding a line.

Each kind says who publishes it and what its payload holds (README: Notifications). A kind is
routed by the grid code and the department its publisher names, so a subscription for a
department or a grid subtree gets only its own events.
"""

from __future__ import annotations

from service.errors import InvalidInput

# kind → (Chinese, English): what happened
EVENT_KINDS: dict[str, tuple[str, str]] = {
    "case.dispatched": (
        "案件已派遣至本部门",
        "a case was dispatched (or reopened) to a department",
    ),
    "case.overdue": ("案件超期", "an open case passed its deadline (once per case)"),
    "order.issued": ("督办单已下发", "a supervision order (督办单) was issued"),
    "brief.published": ("简报已发布", "a daily brief or circular was published"),
}

PING = "ping"  # the test message of a subscription; never published, never subscribed to


def check_kinds(kinds: list[str]) -> list[str]:
    """``kinds`` without repeats, in the order of ``EVENT_KINDS``; ``InvalidInput`` naming
    ``events`` for none or an unknown one."""
    if not kinds:
        raise InvalidInput(
            f"name at least one event kind: {', '.join(EVENT_KINDS)}", field="events"
        )
    unknown = [k for k in kinds if k not in EVENT_KINDS]
    if unknown:
        raise InvalidInput(
            f"unknown event kind(s) {', '.join(map(repr, unknown))}; kinds are "
            f"{', '.join(EVENT_KINDS)}",
            field="events",
        )
    return [k for k in EVENT_KINDS if k in kinds]
