"""The pages' languages: message catalogues (gettext, through Babel) and local formats.

Simplified Chinese (``zh_CN``) is the default, English (``en``) the switch. The catalogues are
``layers/locale/<locale>/LC_MESSAGES/messages.po``; msgids are the English texts, with
``{name}`` holes filled by :meth:`Messages.gettext`. No ``.mo`` file is committed: the ``.po``
is compiled in memory with Babel the first time a locale is used (one read per process), so
the catalogue in the repository is the only copy and cannot go stale. ``make messages``
re-extracts the texts (``babel.cfg``, :mod:`layers.i18n_extract`) and updates both ``.po``
files.

Texts of the browser scripts (``layers/static/citygrid/*.js``, marked as calls of ``_`` with
a literal text) are found the same way; :func:`js_catalogue` gives the page
exactly those, as JSON the script reads (:func:`catalogue_script`).

Nothing here reads a request: the service picks the locale (:func:`negotiate`) and passes it
in.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache
from gettext import GNUTranslations
from pathlib import Path
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_datetime, format_interval
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal, format_percent

from layers.i18n_extract import extracted

__all__ = [
    "DEFAULT_LOCALE",
    "LOCALES",
    "LOCALE_DIR",
    "Messages",
    "N_",
    "catalogue_script",
    "js_catalogue",
    "messages",
    "missing",
    "negotiate",
    "normalize",
]

LOCALES = ("zh_CN", "en")
DEFAULT_LOCALE = "zh_CN"
DEFAULT_TIMEZONE = "Asia/Shanghai"
LOCALE_DIR = Path(__file__).parent / "locale"
JS_DIR = Path(__file__).parent / "static" / "citygrid"
SWITCH_LABELS = {"zh_CN": "中文", "en": "English"}  # each language named in itself


def N_(msgid: str) -> str:  # noqa: N802 - the gettext convention Babel looks for
    """Mark a text for the catalogue where it is defined; it is translated where shown."""
    return msgid


def normalize(value: str | None) -> str | None:
    """The supported locale a language tag means (``zh``, ``zh-CN``, ``zh_Hans`` → ``zh_CN``;
    ``en-GB`` → ``en``), or None."""
    tag = (value or "").strip().replace("-", "_").lower()
    if not tag:
        return None
    primary = tag.split("_", 1)[0]
    if primary == "zh":
        # Traditional Chinese readers still read the Simplified pages better than English
        return "zh_CN"
    if primary == "en":
        return "en"
    return None


def negotiate(asked: str | None, cookie: str | None) -> str:
    """The page's locale: the ``lang`` query parameter, then the language cookie, else Chinese.

    The browser's ``Accept-Language`` is not consulted on purpose: the pages are Chinese
    first, and an office PC or phone set up in English still opens them in Chinese; English
    is the user's switch, remembered in the cookie."""
    for value in (asked, cookie):
        locale = normalize(value)
        if locale:
            return locale
    return DEFAULT_LOCALE


@dataclass(frozen=True)
class _Catalogue:
    translations: GNUTranslations
    msgids: frozenset[str]  # those with a translation


@cache
def _catalogue(locale: str) -> _Catalogue:
    """The locale's ``.po`` compiled in memory (Babel) and loaded as gettext translations."""
    with (LOCALE_DIR / locale / "LC_MESSAGES" / "messages.po").open("rb") as po:
        catalog = read_po(po, locale=locale)
    buffer = io.BytesIO()
    write_mo(buffer, catalog, use_fuzzy=False)
    buffer.seek(0)
    translated = frozenset(
        m.id for m in catalog if isinstance(m.id, str) and m.id and m.string and not m.fuzzy
    )
    return _Catalogue(GNUTranslations(buffer), translated)


_MISSING: set[tuple[str, str]] = set()


def missing() -> set[tuple[str, str]]:
    """``(locale, msgid)`` asked for since the process started that the catalogue lacks (the
    English msgid was shown instead); the page tests require it to stay empty."""
    return set(_MISSING)


@dataclass(frozen=True)
class Messages:
    """One locale's texts and formats (dates and times in ``timezone``)."""

    locale: str = DEFAULT_LOCALE
    timezone: str = DEFAULT_TIMEZONE

    def __post_init__(self) -> None:
        if self.locale not in LOCALES:
            raise ValueError(f"locale must be one of {', '.join(LOCALES)}, got {self.locale!r}")

    def gettext(self, msgid: str, **values: object) -> str:
        """The text in this locale, its ``{holes}`` filled from ``values``."""
        catalogue = _catalogue(self.locale)
        if msgid not in catalogue.msgids:
            _MISSING.add((self.locale, msgid))
        text = catalogue.translations.gettext(msgid)
        return text.format(**values) if values else text

    @property
    def html_lang(self) -> str:
        """The ``lang`` attribute of the pages (``zh-CN`` / ``en``)."""
        return self.locale.replace("_", "-")

    @property
    def other(self) -> str:
        """The locale the page's language switch leads to."""
        return "en" if self.locale == "zh_CN" else "zh_CN"

    @property
    def other_html_lang(self) -> str:
        """The ``lang`` attribute of the switch's link (``en`` / ``zh-CN``)."""
        return self.other.replace("_", "-")

    @property
    def other_label(self) -> str:
        """The switch's label: the other language named in itself (中文 / English)."""
        return SWITCH_LABELS[self.other]

    def day(self, value: date) -> str:
        """A date as the locale writes it (2026年11月3日 / Nov 3, 2026)."""
        return format_date(value, "medium", locale=self.locale)

    def period(self, first: date, last: date) -> str:
        """A span of days (2026年11月1日至30日 style / Nov 1 – 30, 2026)."""
        if first == last:
            return self.day(first)
        return format_interval(first, last, "yMMMd", locale=self.locale)

    def moment(self, value: datetime) -> str:
        """A time in the city's time zone, as the locale writes it."""
        return format_datetime(value, "medium", tzinfo=ZoneInfo(self.timezone), locale=self.locale)

    def number(self, value: float, digits: int = 2) -> str:
        """A number with the locale's separators and at most ``digits`` decimals."""
        return format_decimal(value, format=f"#,##0.{'#' * digits}", locale=self.locale)

    def percent(self, share: float) -> str:
        """A share (0..1) as a percentage in the locale's style."""
        return format_percent(share, locale=self.locale)

    def browser(self, extra: Iterable[str] = ()) -> dict[str, object]:
        """What the page's script needs: locale (BCP 47), time zone and its texts, plus the
        ``extra`` msgids it shows from the service's answers (legend texts)."""
        texts = dict(js_catalogue(self.locale))
        for msgid in extra:
            texts[msgid] = self.gettext(msgid)
        return {"locale": self.html_lang, "timezone": self.timezone, "messages": texts}


@cache
def messages(locale: str = DEFAULT_LOCALE, timezone: str = DEFAULT_TIMEZONE) -> Messages:
    """The :class:`Messages` of a locale (any tag :func:`normalize` knows; else Chinese)."""
    return Messages(normalize(locale) or DEFAULT_LOCALE, timezone)


@cache
def js_msgids() -> tuple[str, ...]:
    """The texts the browser scripts ask for (calls of ``_`` with a literal text)."""
    return tuple(sorted(extracted(JS_DIR.glob("*.js"))))


@cache
def js_catalogue(locale: str) -> dict[str, str]:
    """``{msgid: text}`` of the browser scripts' texts in ``locale``."""
    translations = _catalogue(locale).translations
    return {msgid: translations.gettext(msgid) for msgid in js_msgids()}


def catalogue_script(tr: Messages, extra: Iterable[str] = ()) -> str:
    """The JSON the page's script reads (``<script type="application/json"
    id="citygrid-i18n">``): data, never run, so no Content-Security-Policy nonce is needed."""
    body = json.dumps(tr.browser(extra), ensure_ascii=False, sort_keys=True)
    # no "</script>" or "<!--" can end the block early
    body = body.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return f'<script type="application/json" id="citygrid-i18n">{body}</script>'
