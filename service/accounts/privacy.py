"""Personal data: reporters' names and phones, workers' and responsible persons' phones.

Shown as stored only to principals holding ``people.read``; everyone else gets them masked —
phones keep their first three and last four digits (``138****1234``), names their first
character (``张*``, ``张**``). Every answer that carries such data (case JSON and history, the
ledger's CSV/XLSX export, patrol workers, heat-layer grids, Open311) goes through this module,
so the rule is written once.
"""

from __future__ import annotations

from typing import Any

from service.accounts.principal import Principal

PEOPLE_READ = "people.read"

# keys of a reporter record that name or reach a person
_NAME_KEYS = ("name", "first_name", "last_name", "contact")
_PHONE_KEYS = ("phone", "mobile", "tel")
_MASKED_AWAY = ("email",)


def sees_people(by: Principal) -> bool:
    """Whether ``by`` sees names and phones unmasked."""
    return by.can(PEOPLE_READ)


def mask_phone(phone: str | None) -> str | None:
    """``13812341234`` → ``138****1234``; short numbers keep only their last two digits."""
    if not phone:
        return phone
    digits = phone.strip()
    if len(digits) >= 11:
        return digits[:3] + "*" * (len(digits) - 7) + digits[-4:]
    if len(digits) > 4:
        return "*" * (len(digits) - 2) + digits[-2:]
    return "*" * len(digits)


def mask_name(name: str | None) -> str | None:
    """``张三`` → ``张*``, ``欧阳娜娜`` → ``欧***``; a one-character name becomes ``*``."""
    if not name:
        return name
    name = name.strip()
    if len(name) <= 1:
        return "*"
    return name[0] + "*" * (len(name) - 1)


def phone_for(by: Principal, phone: str | None) -> str | None:
    """``phone`` as ``by`` may see it."""
    return phone if sees_people(by) else mask_phone(phone)


def name_for(by: Principal, name: str | None) -> str | None:
    """``name`` as ``by`` may see it."""
    return name if sees_people(by) else mask_name(name)


def person_for(by: Principal, person: dict[str, Any]) -> dict[str, Any]:
    """A reporter (or responsible person) record as ``by`` may see it: names and phones
    masked, e-mail addresses left out, other keys (source, time, worker id) kept."""
    if sees_people(by):
        return dict(person)
    out: dict[str, Any] = {}
    for key, value in person.items():
        if key in _MASKED_AWAY:
            continue
        if key in _NAME_KEYS and isinstance(value, str):
            out[key] = mask_name(value)
        elif key in _PHONE_KEYS and isinstance(value, str):
            out[key] = mask_phone(value)
        else:
            out[key] = value
    return out


def people_for(by: Principal, people: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """Every record of ``people`` through :func:`person_for`."""
    return [person_for(by, p) for p in people or []]
