"""Supervision orders (督办单) and their escalation: orders, their numbers and history
(``orders``), the responsible units and their chain (``units``), escalation rules as data
(``rules``) and the sweep that applies them (``escalation``)."""
