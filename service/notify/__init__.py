"""Notifications: webhook subscriptions, the outbox of events, and their delivery.

Other domains announce what happened with :func:`publish` inside their own transaction, e.g.
``notify.publish(session, "order.issued", payload, grid_code=..., department=..., city=...)``;
the deliverer (:mod:`service.notify.deliverer`) sends each matching subscription a signed POST
after the commit.
"""

from service.notify.kinds import EVENT_KINDS
from service.notify.outbox import publish

__all__ = ["EVENT_KINDS", "publish"]
