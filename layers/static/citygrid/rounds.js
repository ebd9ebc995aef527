/* citygrid cross-scoring page (layers/rounds.py): inspection rounds, their rotation and
 * results for the organiser, the scorer's assignments and the checklist form.
 *
 * Everything comes from the JSON API named in the page's data attributes. Writes carry the
 * page's CSRF token in the X-CSRFToken header (service/http/csrf.py). An error answer that
 * names a field ({"detail", "field"}, or FastAPI's validation list) is shown next to that
 * field: the element [data-error-for="<field>"] of the form, else the page's general line.
 */
(function () {
  "use strict";

  var root = document.getElementById("citygrid-rounds");
  if (!root) return;
  var cfg = root.dataset;
  // the page's texts in its language (layers/i18n.py: a JSON block, never run)
  var I18N = JSON.parse(document.getElementById("citygrid-i18n").textContent);
  var R = (window.CitygridRounds = { state: {} });

  // a text of the catalogue, its {holes} filled from `values` (Babel finds the calls of _ with a literal text)
  function _(msgid, values) {
    var text = I18N.messages[msgid] || msgid;
    return text.replace(/\{(\w+)\}/g, function (hole, k) {
      return values && values[k] !== undefined ? values[k] : "";
    });
  }
  var STATES = { draft: _("draft"), open: _("open"), closed: _("closed") };
  var LISTS = { red: _("red list"), yellow: _("yellow list") };
  var NUMBER = new Intl.NumberFormat(I18N.locale, { maximumFractionDigits: 2 });

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "text") node.textContent = attrs[k];
      else node.setAttribute(k, attrs[k]);
    });
    (children || []).forEach(function (c) {
      node.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
    });
    return node;
  }

  function num(v) {
    return v === null || v === undefined ? "—" : NUMBER.format(Number(v));
  }

  // fetch JSON; resolves {ok, status, body} (never rejects on an HTTP error)
  function call(method, url, body) {
    var headers = { Accept: "application/json" };
    if (method !== "GET") {
      headers["X-CSRFToken"] = cfg.csrf;
      headers["Content-Type"] = "application/json";
    }
    return fetch(url, {
      method: method,
      headers: headers,
      credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body),
    }).then(function (r) {
      if (r.status === 401) window.location.reload(); // the session ended: to the login form
      return r
        .json()
        .catch(function () {
          return {};
        })
        .then(function (b) {
          return { ok: r.ok, status: r.status, body: b };
        });
    });
  }
  R.call = call;

  function clearErrors(scope) {
    [scope, root].forEach(function (s) {
      s.querySelectorAll("[data-error-for]").forEach(function (e) {
        if (s === scope || e.dataset.errorFor === "") e.textContent = "";
      });
      s.querySelectorAll("[aria-invalid]").forEach(function (i) {
        i.removeAttribute("aria-invalid");
      });
    });
  }

  // show an error answer next to its field; `fieldOf` maps a validation loc to a field name
  function showError(scope, answer, fieldOf) {
    var errors = [];
    var b = answer.body || {};
    if (Array.isArray(b.detail)) {
      b.detail.forEach(function (e) {
        var loc = (e.loc || []).slice(1);
        errors.push({ field: fieldOf ? fieldOf(loc) : loc.join("."), message: e.msg });
      });
    } else {
      errors.push({
        field: b.field || "",
        message: b.detail || _("The request failed ({status})", { status: answer.status }),
      });
    }
    errors.forEach(function (e) {
      var target = e.field && scope.querySelector('[data-error-for="' + CSS.escape(e.field) + '"]');
      var message = e.message;
      if (!target) {
        target = root.querySelector('[data-error-for=""]');
        if (e.field) message = e.field + ": " + message;
      }
      target.textContent = target.textContent ? target.textContent + " " + message : message;
      var input = e.field && scope.querySelector('[data-field="' + CSS.escape(e.field) + '"]');
      if (input) input.setAttribute("aria-invalid", "true");
    });
  }

  // -- the organiser ---------------------------------------------------------------------------
  var organiser = document.getElementById("rounds-organiser");

  function loadRounds(period) {
    var tbody = organiser.querySelector("#rounds-list tbody");
    return call("GET", cfg.api + "?period=" + encodeURIComponent(period)).then(function (a) {
      tbody.textContent = "";
      if (!a.ok) return showError(organiser, a);
      a.body.rounds.forEach(function (r) {
        var show = el("button", { type: "button", text: _("View") });
        show.addEventListener("click", function () {
          loadRound(r.id);
        });
        tbody.appendChild(
          el("tr", { "data-round": r.id }, [
            el("td", { text: r.name }),
            el("td", { text: r.period }),
            el("td", { text: STATES[r.state] || r.state }),
            el("td", { text: r.progress.submitted + " / " + r.progress.assigned }),
            el("td", {}, [show]),
          ])
        );
      });
      organiser.querySelector("#rounds-empty").hidden = a.body.rounds.length > 0;
    });
  }

  function gridLabel(round, code) {
    var info = (round.grid_info || {})[code];
    return info ? code + " " + info.name : code;
  }

  function loadRound(id) {
    return call("GET", cfg.api + "/" + id).then(function (a) {
      var detail = organiser.querySelector("#round-detail");
      clearErrors(detail);
      if (!a.ok) return showError(detail, a);
      showRound(a.body);
    });
  }
  R.loadRound = loadRound;

  function showRound(round) {
    R.state.round = round;
    var detail = organiser.querySelector("#round-detail");
    detail.hidden = false;
    detail.dataset.round = round.id;
    detail.querySelector("#round-title").textContent =
      round.name + " · " + round.period + " · " + (STATES[round.state] || round.state);
    detail.querySelector("#round-propose").hidden = round.state !== "draft";
    detail.querySelector("#round-open").hidden = round.state !== "draft";
    detail.querySelector("#round-close").hidden = round.state !== "open";

    // the rotation, per scorer
    var byScorer = {};
    var order = [];
    round.assignments.forEach(function (x) {
      if (!byScorer[x.scorer]) {
        byScorer[x.scorer] = { name: x.scorer_name, grids: [] };
        order.push(x.scorer);
      }
      byScorer[x.scorer].grids.push(gridLabel(round, x.grid) + (x.scored ? " ✓" : ""));
    });
    var rotation = detail.querySelector("#rotation tbody");
    rotation.textContent = "";
    order.forEach(function (login) {
      var name = byScorer[login].name;
      var who = name ? _("{name} ({login})", { name: name, login: login }) : login;
      rotation.appendChild(
        el("tr", { "data-scorer": login }, [
          el("td", { text: who }),
          el("td", { text: byScorer[login].grids.join(_(", ")) }),
        ])
      );
    });

    // the editable assignments (drafts only)
    var form = detail.querySelector("#assignments-form");
    form.hidden = round.state !== "draft";
    var list = detail.querySelector("#round-scorers");
    list.textContent = "";
    order.forEach(function (login) {
      list.appendChild(el("option", { value: login }));
    });
    var rows = form.querySelector("tbody");
    rows.textContent = "";
    round.assignments.forEach(function (x) {
      rows.appendChild(assignmentRow(round, x.grid, x.scorer));
    });
    numberRows();
    loadResults(round);
  }

  function assignmentRow(round, grid, scorer) {
    var select = el("select", { name: "grid" });
    round.grids.forEach(function (code) {
      var option = el("option", { value: code, text: gridLabel(round, code) });
      if (code === grid) option.selected = true;
      select.appendChild(option);
    });
    var input = el("input", {
      type: "text",
      name: "scorer",
      list: "round-scorers",
      value: scorer || "",
      autocomplete: "off",
    });
    var remove = el("button", { type: "button", text: _("Remove") });
    var error = el("span", { class: "citygrid-field-error", role: "alert" });
    var row = el("tr", {}, [
      el("td", {}, [select]),
      el("td", {}, [input, error]),
      el("td", {}, [remove]),
    ]);
    remove.addEventListener("click", function () {
      row.remove();
      numberRows();
    });
    return row;
  }

  // each row answers to assignments[n], n its position (the API names the row it refuses)
  function numberRows() {
    var rows = organiser.querySelectorAll("#assignments-form tbody tr");
    rows.forEach(function (row, n) {
      row.querySelector("input").dataset.field = "assignments[" + n + "]";
      row.querySelector(".citygrid-field-error").dataset.errorFor = "assignments[" + n + "]";
    });
  }

  function roundAction(path, method, body, form) {
    var round = R.state.round;
    var scope = form || organiser.querySelector("#round-detail");
    clearErrors(scope);
    return call(method, cfg.api + "/" + round.id + path, body).then(function (a) {
      if (!a.ok) {
        return showError(scope, a, function (loc) {
          return loc[0] === "assignments" && loc.length > 1
            ? "assignments[" + loc[1] + "]"
            : loc.join(".");
        });
      }
      showRound(a.body);
      loadRounds(organiser.querySelector("#rounds-period").value);
    });
  }

  function loadResults(round) {
    // only the latest request draws: an older one (before the round closed) may end later
    var seq = (R.state.resultsSeq = (R.state.resultsSeq || 0) + 1);
    var tbody = organiser.querySelector("#results tbody");
    var note = organiser.querySelector("#results-note");
    note.textContent =
      round.state === "closed"
        ? _("The checklist scores count in the combined score by the scheme's weight.")
        : _("The checklist scores count in the combined score once the round is closed.");
    var levels = {};
    Object.keys(round.grid_info || {}).forEach(function (code) {
      levels[round.grid_info[code].level] = true;
    });
    var scores = {};
    var requests = Object.keys(levels).map(function (level) {
      var url =
        cfg.scores +
        "?period=" +
        encodeURIComponent(round.period) +
        "&subject=" +
        encodeURIComponent("grid:" + level);
      return call("GET", url).then(function (a) {
        if (!a.ok) return; // no scheme rule for the level, or no right to the scores: "—"
        a.body.items.forEach(function (s) {
          if (s.kind === "grid") scores[s.key] = s;
        });
      });
    });
    var results = call("GET", cfg.api + "/" + round.id + "/results");
    return Promise.all([results].concat(requests)).then(function (answers) {
      if (seq !== R.state.resultsSeq) return;
      var grids = answers[0].ok ? answers[0].body.grids : {};
      tbody.textContent = "";
      tbody.parentNode.dataset.state = round.state; // what the table shows (for tests too)
      round.grids.forEach(function (code) {
        var mine = grids[code];
        var s = scores[code];
        var info = (round.grid_info || {})[code] || {};
        var listCell = el("td");
        if (s) {
          if (s.list) listCell.appendChild(el("span", { class: "citygrid-" + s.list, text: LISTS[s.list] }));
          var href =
            cfg.lists +
            "?period=" +
            encodeURIComponent(round.period) +
            "&subject=" +
            encodeURIComponent("grid:" + info.level) +
            "&group=" +
            encodeURIComponent(s.group);
          listCell.appendChild(el("a", { href: href, text: _("See the red/yellow list") }));
        } else {
          listCell.textContent = "—";
        }
        tbody.appendChild(
          el("tr", { "data-grid": code }, [
            el("td", { text: gridLabel(round, code) }),
            el("td", { class: "citygrid-num", text: mine ? num(mine.score) : _("no scoresheet yet") }),
            el("td", { class: "citygrid-num", text: s ? num(s.total) : "—" }),
            el("td", { text: s ? s.grade : "—" }),
            listCell,
          ])
        );
      });
    });
  }

  if (organiser) {
    var filter = organiser.querySelector("#rounds-filter");
    filter.addEventListener("submit", function (e) {
      e.preventDefault();
      organiser.querySelector("#round-detail").hidden = true;
      loadRounds(filter.period.value);
    });
    organiser.querySelector("#round-propose").addEventListener("click", function () {
      roundAction("/rotation", "POST");
    });
    organiser.querySelector("#round-open").addEventListener("click", function () {
      roundAction("/open", "POST");
    });
    organiser.querySelector("#round-close").addEventListener("click", function () {
      roundAction("/close", "POST");
    });
    var assignments = organiser.querySelector("#assignments-form");
    organiser.querySelector("#assignment-add").addEventListener("click", function () {
      assignments.querySelector("tbody").appendChild(assignmentRow(R.state.round, null, ""));
      numberRows();
    });
    assignments.addEventListener("submit", function (e) {
      e.preventDefault();
      numberRows();
      var pairs = [];
      assignments.querySelectorAll("tbody tr").forEach(function (row) {
        pairs.push({
          grid: row.querySelector("select").value,
          scorer: row.querySelector("input").value.trim(),
        });
      });
      roundAction("/assignments", "PUT", { assignments: pairs }, assignments);
    });
    loadRounds(cfg.period);
  }

  // -- the scorer ------------------------------------------------------------------------------
  var scorer = document.getElementById("rounds-scorer");

  function loadMine() {
    var tbody = scorer.querySelector("#my-assignments tbody");
    return call("GET", cfg.api + "/mine").then(function (a) {
      tbody.textContent = "";
      if (!a.ok) return showError(scorer, a);
      a.body.assignments.forEach(function (x) {
        var action = el("td");
        if (x.scored) {
          var show = el("button", { type: "button", text: _("View") });
          show.addEventListener("click", function () {
            showStored(x);
          });
          action.appendChild(el("span", { text: _("submitted") + " " }));
          action.appendChild(show);
        } else if (x.state === "open") {
          var fill = el("button", { type: "button", text: _("Fill in the scoresheet") });
          fill.addEventListener("click", function () {
            openSheet(x);
          });
          action.appendChild(fill);
        } else {
          action.textContent = _("not open yet");
        }
        tbody.appendChild(
          el("tr", { "data-round": x.round, "data-grid": x.grid }, [
            el("td", { text: x.round_name }),
            el("td", { text: x.period }),
            el("td", { text: STATES[x.state] || x.state }),
            el("td", { text: x.grid }),
            action,
          ])
        );
      });
      scorer.querySelector("#mine-empty").hidden = a.body.assignments.length > 0;
    });
  }

  function openSheet(x) {
    var form = scorer.querySelector("#sheet-form");
    var url = cfg.api + "/" + x.round + "/checklist?grid=" + encodeURIComponent(x.grid);
    clearErrors(form);
    scorer.querySelector("#sheet-result").textContent = "";
    return call("GET", url).then(function (a) {
      if (!a.ok) return showError(form, a);
      var tbody = form.querySelector("tbody");
      tbody.textContent = "";
      a.body.items.forEach(function (item) {
        var field = "items[" + item.code + "]";
        var name = cfg.lang === "en" ? item.name_en : item.name_zh;
        var points = el("input", {
          type: "number",
          name: "points",
          min: "0",
          max: String(item.max_points),
          step: "0.5",
          required: "",
          "data-field": field,
          "aria-label": name,
        });
        var note = el("input", { type: "text", name: "note", maxlength: "2000" });
        tbody.appendChild(
          el("tr", { "data-code": item.code }, [
            el("td", { text: name }),
            el("td", { class: "citygrid-num", text: num(item.max_points) }),
            el("td", {}, [
              points,
              el("span", { class: "citygrid-field-error", "data-error-for": field, role: "alert" }),
            ]),
            el("td", {}, [note]),
          ])
        );
      });
      form.querySelector("#sheet-notes").value = "";
      form.querySelector("#sheet-title").textContent = _("Scoresheet: {grid} ({round})", {
        grid: x.grid,
        round: x.round_name,
      });
      form.dataset.round = x.round;
      form.dataset.grid = x.grid;
      form.hidden = false;
      var first = tbody.querySelector("input");
      if (first) first.focus();
    });
  }
  R.openSheet = openSheet;

  function submitSheet(form) {
    var rows = Array.prototype.slice.call(form.querySelectorAll("tbody tr"));
    var codes = rows.map(function (row) {
      return row.dataset.code;
    });
    var items = rows.map(function (row) {
      var value = row.querySelector('input[name="points"]').value.trim();
      var note = row.querySelector('input[name="note"]').value.trim();
      return { code: row.dataset.code, points: value === "" ? null : Number(value), note: note || null };
    });
    var notes = form.querySelector("#sheet-notes").value.trim();
    var body = { grid: form.dataset.grid, items: items, notes: notes || null, photos: [] };
    clearErrors(form);
    var url = cfg.api + "/" + form.dataset.round + "/scoresheets";
    return call("POST", url, body).then(function (a) {
      if (!a.ok) {
        return showError(form, a, function (loc) {
          // ["items", n, "points"] names the row's item, as the service's own errors do
          return loc[0] === "items" && loc.length > 1 && codes[loc[1]] !== undefined
            ? "items[" + codes[loc[1]] + "]"
            : loc.join(".");
        });
      }
      form.hidden = true;
      scorer.querySelector("#sheet-result").textContent = _("Scoresheet for grid {grid} submitted: {points} / {max} points, score {score}.", {
        grid: a.body.grid,
        points: num(a.body.points),
        max: num(a.body.max_points),
        score: num(a.body.score),
      });
      loadMine();
    });
  }

  function showStored(x) {
    var out = scorer.querySelector("#sheet-result");
    return call("GET", cfg.api + "/" + x.round + "/scoresheets").then(function (a) {
      if (!a.ok) return showError(scorer, a);
      var sheet = a.body.scoresheets.filter(function (s) {
        return s.grid === x.grid;
      })[0];
      if (!sheet) return;
      out.textContent =
        x.grid +
        " · " +
        _("Stored points: ") +
        sheet.items
          .map(function (i) {
            return i.code + " " + num(i.points) + "/" + num(i.max_points);
          })
          .join(_(", ")) +
        " · " +
        num(sheet.score);
    });
  }

  if (scorer) {
    var sheetForm = scorer.querySelector("#sheet-form");
    sheetForm.addEventListener("submit", function (e) {
      e.preventDefault();
      submitSheet(sheetForm);
    });
    scorer.querySelector("#sheet-cancel").addEventListener("click", function () {
      sheetForm.hidden = true;
    });
    loadMine();
  }
})();
