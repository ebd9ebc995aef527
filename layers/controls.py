"""Controls of the dispatcher map: the filter panel and the "no heat layer" choice."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from folium.elements import JSCSSMixin
from folium.map import Layer
from folium.template import Template

from layers.i18n import Messages, messages
from layers.remote import RUNTIME_CSS, RUNTIME_JS

__all__ = ["Account", "Choice", "FilterPanel", "NoLayer", "panel_labels"]

POSITIONS = ("topleft", "topright", "bottomleft", "bottomright")


@dataclass(frozen=True)
class Choice:
    """One option of a select: submitted ``value``, shown ``label``, ``group`` (optgroup)."""

    value: str
    label: str
    group: str = ""


@dataclass(frozen=True)
class Account:
    """Who is logged in, and the form that logs them out (a POST carrying the CSRF token);
    ``links`` are ``(label, path)`` of the other pages this account may open."""

    name: str
    logout_action: str = "/logout"
    csrf_token: str = ""
    csrf_field: str = "csrftoken"
    links: tuple[tuple[str, str], ...] = ()


class FilterPanel(JSCSSMixin):
    """A Leaflet control with a GET form (period, category, grid) and the active filter.

    Submitting reloads the page with ``from``, ``to``, ``category`` and ``grid`` as query
    parameters; the server validates them. ``note`` lines ``(label, value)`` say what the map
    shows now (each label with its colon: "类别：", "Category:"). ``messages`` gives the
    panel's language (default Chinese); ``language`` is the switch to the other one:
    ``(label, path, lang attribute)``.
    """

    default_js = [RUNTIME_JS]
    default_css = [RUNTIME_CSS]

    _template = Template(
        """
        {% macro html(this, kwargs) %}
        <div id="{{ this.get_name() }}" class="citygrid-filter leaflet-control">
          <h1>{{ this.title|e }}</h1>
          {%- if this.account %}
          <form method="post" action="{{ this.account.logout_action|e }}"
                class="citygrid-account">
            <span class="citygrid-account-name">{{ this.account.name|e }}</span>
            <input type="hidden" name="{{ this.account.csrf_field|e }}"
                   value="{{ this.account.csrf_token|e }}">
            <button type="submit">{{ this.labels.logout|e }}</button>
          </form>
          {%- if this.account.links %}
          <nav class="citygrid-pages">
            {%- for label, href in this.account.links %}
            <a href="{{ href|e }}">{{ label|e }}</a>
            {%- endfor %}
          </nav>
          {%- endif %}
          {%- endif %}
          {%- if this.language %}
          <p class="citygrid-lang"><a href="{{ this.language[1]|e }}"
             lang="{{ this.language[2]|e }}">{{ this.language[0]|e }}</a></p>
          {%- endif %}
          <form method="get" action="{{ this.action|e }}" class="citygrid-filter-form">
            <label for="{{ this.get_name() }}_from">{{ this.labels.from|e }}</label>
            <input type="date" id="{{ this.get_name() }}_from" name="from"
                   value="{{ this.first_day|e }}">
            <label for="{{ this.get_name() }}_to">{{ this.labels.to|e }}</label>
            <input type="date" id="{{ this.get_name() }}_to" name="to"
                   value="{{ this.last_day|e }}">
            <label for="{{ this.get_name() }}_category">{{ this.labels.category|e }}</label>
            <select id="{{ this.get_name() }}_category" name="category">
              <option value="">{{ this.labels.all_categories|e }}</option>
              {%- for group, choices in this.groups %}
              <optgroup label="{{ group|e }}">
                {%- for c in choices %}
                <option value="{{ c.value|e }}"
                  {%- if c.value == this.category %} selected{% endif %}>
                  {{- c.label|e -}}
                </option>
                {%- endfor %}
              </optgroup>
              {%- endfor %}
            </select>
            <label for="{{ this.get_name() }}_grid">{{ this.labels.grid|e }}</label>
            <input type="text" id="{{ this.get_name() }}_grid" name="grid"
                   value="{{ this.grid|e }}" placeholder="{{ this.labels.grid_placeholder|e }}"
                   autocomplete="off">
            <div class="citygrid-filter-actions">
              <button type="submit">{{ this.labels.apply|e }}</button>
              <a href="{{ this.action|e }}">{{ this.labels.reset|e }}</a>
            </div>
          </form>
          <div class="citygrid-active-filter">
            {%- for label, value in this.note %}
            <div>{{ label|e }} <b>{{ value|e }}</b></div>
            {%- endfor %}
          </div>
        </div>
        {% endmacro %}

        {% macro script(this, kwargs) %}
        var {{ this.get_name() }} = L.control({position: {{ this.position|tojson }}});
        {{ this.get_name() }}.onAdd = function () {
            var div = document.getElementById({{ this.get_name()|tojson }});
            L.DomEvent.disableClickPropagation(div);
            L.DomEvent.disableScrollPropagation(div);
            return div;
        };
        {{ this.get_name() }}.addTo({{ this._parent.get_name() }});
        {% endmacro %}
        """
    )

    def __init__(
        self,
        *,
        first_day: str,
        last_day: str,
        category: str | None,
        grid: str | None,
        categories: Sequence[Choice],
        note: Sequence[tuple[str, str]],
        title: str = "citygrid",
        action: str = "/",
        position: str = "topleft",
        account: Account | None = None,
        messages: Messages | None = None,
        language: tuple[str, str, str] | None = None,
    ) -> None:
        super().__init__()
        self._name = "FilterPanel"
        if account is not None and not account.logout_action.startswith("/"):
            raise ValueError("the logout action must be a path on this service")
        if account is not None and any(not h.startswith("/") for _, h in account.links):
            raise ValueError("the account's links must be paths on this service")
        self.account = account
        if position not in POSITIONS:
            raise ValueError(f"position must be one of {', '.join(POSITIONS)}")
        if not action.startswith("/"):
            raise ValueError("action must be a path on this service")
        values = [c.value for c in categories]
        if category and category not in values:
            raise ValueError(f"category {category!r} is not among the choices")
        self.first_day = first_day
        self.last_day = last_day
        self.category = category or ""
        self.grid = grid or ""
        self.title = title
        self.action = action
        self.position = position
        self.note = list(note)
        groups: dict[str, list[Choice]] = {}
        for c in categories:
            groups.setdefault(c.group, []).append(c)
        self.groups = list(groups.items())
        self.labels = panel_labels(messages or _default_messages())
        if language is not None and not language[1].startswith("/"):
            raise ValueError("the language switch must be a path on this service")
        self.language = language


def _default_messages() -> Messages:
    return messages()


def panel_labels(tr: Messages) -> dict[str, str]:
    """The filter panel's own texts in ``tr``'s language."""
    _ = tr.gettext
    return {
        "logout": _("Log out"),
        "from": _("From"),
        "to": _("To"),
        "category": _("Category"),
        "all_categories": _("all categories"),
        "grid": _("Grid"),
        "grid_placeholder": _("grid code (any level)"),
        "apply": _("Apply"),
        "reset": _("Reset"),
    }


class NoLayer(JSCSSMixin, Layer):
    """An empty layer: "none" among mutually exclusive (radio) layers."""

    default_js = [RUNTIME_JS]
    default_css = [RUNTIME_CSS]

    _template = Template(
        """
        {% macro script(this, kwargs) -%}
        var {{ this.get_name() }} = new L.Citygrid.Nothing({{ this.options|tojson }});
        {%- endmacro %}
        """
    )

    def __init__(self, name: str, *, overlay: bool = False, show: bool = False) -> None:
        super().__init__(name=name, overlay=overlay, control=True, show=show)
        self._name = "NoLayer"
        self.options = {"title": name}
