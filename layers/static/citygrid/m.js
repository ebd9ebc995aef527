/* citygrid grid worker's phone page (layers/mobile.py): my grids and position, my tasks,
 * 随手拍 reports, verification and feedback, patrol sessions — and an outbox that works
 * without signal.
 *
 * Settings come from the page's JSON block #m-config, every text from #m-texts (one dict of
 * the chosen language, kept in layers/mobile.py): no text is written here. Writes carry the
 * page's CSRF token in the X-CSRFToken header (service/http/csrf.py).
 *
 * The outbox: a report is never posted straight away. It is stored in IndexedDB with its
 * Idempotency-Key (made when it is queued) and its photos, then the queue is sent in order
 * whenever there is network (now, on the "online" event, every 30 s, on "Send now"). The
 * service answers a key it has seen with the first case (200, Idempotent-Replayed), so a
 * report that was sent but whose answer was lost is sent again safely: exactly one case.
 * One sender at a time (a Web Lock across tabs, a promise within one).
 */
(function () {
  "use strict";

  var cfg = JSON.parse(document.getElementById("m-config").textContent);
  var T = JSON.parse(document.getElementById("m-texts").textContent);
  var base = cfg.base || "";
  var state = {
    pos: null,
    located: null,
    categories: {},
    current: null,
    map: null,
    marker: null,
    circle: null,
    gridLayer: null,
    fixes: [],
    fixesSent: 0,
    patrol: null,
  };

  function t(key, values) {
    var s = T[key] === undefined ? key : T[key];
    return s.replace(/\{(\w+)\}/g, function (m, name) {
      return values && values[name] !== undefined && values[name] !== null ? values[name] : m;
    });
  }

  function $(id) {
    return document.getElementById(id);
  }

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      node.setAttribute(k, attrs[k]);
    });
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function uuid() {
    if (self.crypto && crypto.randomUUID) return crypto.randomUUID();
    var b = crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    var h = Array.prototype.map.call(b, function (x) {
      return (x + 256).toString(16).slice(1);
    }).join("");
    return [h.slice(0, 8), h.slice(8, 12), h.slice(12, 16), h.slice(16, 20), h.slice(20)].join("-");
  }

  // -- the API --------------------------------------------------------------------------------

  var inflight = []; // fetches not yet settled (logging out waits for them)
  var leaving = false; // logging out: no new call starts

  function api(method, path, body, headers) {
    if (leaving) return Promise.reject(new Error("logging out"));
    var call = request(method, path, body, headers);
    inflight.push(call);
    var done = function () {
      inflight.splice(inflight.indexOf(call), 1);
    };
    call.then(done, done);
    return call;
  }

  function request(method, path, body, headers) {
    var h = Object.assign({ Accept: "application/json" }, headers || {});
    var init = { method: method, headers: h, credentials: "same-origin" };
    if (method !== "GET") h["X-CSRFToken"] = cfg.csrf;
    if (body !== undefined && !(body instanceof FormData)) {
      h["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    } else if (body !== undefined) {
      init.body = body;
    }
    return fetch(base + path, init);
  }

  function readJson(answer) {
    return answer.json().catch(function () {
      return {};
    });
  }

  // {"detail", "field"} or FastAPI's validation list → [field, message]
  function refusal(status, data) {
    var detail = data && data.detail;
    if (Array.isArray(detail) && detail.length) {
      var loc = (detail[0].loc || []).filter(function (p) {
        return p !== "body" && p !== "query";
      });
      return [loc.join("."), detail[0].msg];
    }
    return [(data && data.field) || "", t("failed", { status: status, detail: detail || "" })];
  }

  function showError(scope, field, message) {
    var root = scope || document;
    var spot = root.querySelector('[data-error-for="' + field + '"]') ||
      document.querySelector('#m-main > [data-error-for=""]');
    spot.textContent = message;
  }

  function clearErrors(scope) {
    (scope || document).querySelectorAll("[data-error-for]").forEach(function (n) {
      n.textContent = "";
    });
  }

  // -- datum: the base map may be GCJ-02 (AMap); positions from the phone are WGS 84 ---------
  // (datum.js: the formula of gis/datum.py); the grids come from the API already shifted
  // (datum=gcj02), as on the dispatcher page.
  function shift(lon, lat) {
    return window.CitygridDatum.shift(cfg.datum, lon, lat);
  }

  // -- the outbox (IndexedDB) -------------------------------------------------------------------

  var dbPromise = null;

  function db() {
    if (!dbPromise) {
      dbPromise = new Promise(function (resolve, reject) {
        var open = indexedDB.open("citygrid-m", 1);
        open.onupgradeneeded = function () {
          open.result.createObjectStore("outbox", { keyPath: "id", autoIncrement: true });
          open.result.createObjectStore("sent", { keyPath: "key" });
        };
        open.onsuccess = function () {
          resolve(open.result);
        };
        open.onerror = function () {
          reject(open.error);
        };
      });
    }
    return dbPromise;
  }

  function store(name, mode, work) {
    return db().then(function (d) {
      return new Promise(function (resolve, reject) {
        var tx = d.transaction(name, mode);
        var result;
        var req = work(tx.objectStore(name));
        if (req) {
          req.onsuccess = function () {
            result = req.result;
          };
        }
        tx.oncomplete = function () {
          resolve(result);
        };
        tx.onerror = tx.onabort = function () {
          reject(tx.error);
        };
      });
    });
  }

  var outbox = {
    add: function (item) {
      return store("outbox", "readwrite", function (s) {
        return s.add(item);
      });
    },
    put: function (item) {
      return store("outbox", "readwrite", function (s) {
        return s.put(item);
      });
    },
    remove: function (id) {
      return store("outbox", "readwrite", function (s) {
        return s.delete(id);
      });
    },
    all: function () {
      return store("outbox", "readonly", function (s) {
        return s.getAll();
      });
    },
    sent: function (key) {
      return store("sent", "readonly", function (s) {
        return s.get(key);
      });
    },
    remember: function (key, caseId) {
      return store("sent", "readwrite", function (s) {
        return s.put({ key: key, case_id: caseId, at: new Date().toISOString() });
      });
    },
  };

  /* Send a photo of a case: multipart with `file`, `stage` (before | during | after) and
   * the phone's `lon`/`lat` (WGS 84) when known. The photo service (service/photos) owns
   * the route; until it exists the answer is 404/405 and the outbox keeps the photo. */
  // step: report | feedback | verification (it decides the permission); stage: before | after
  function uploadPhoto(caseId, step, stage, blob, where) {
    var form = new FormData();
    form.append("file", blob, blob.name || "photo.jpg");
    form.append("step", step);
    form.append("stage", stage);
    if (where && where.lon !== undefined && where.lon !== null) {
      form.append("lon", String(where.lon));
      form.append("lat", String(where.lat));
    }
    var headers = where && where.key ? { "Idempotency-Key": where.key } : {};
    return api("POST", "/api/cases/" + caseId + "/photos", form, headers);
  }

  var sending = null;

  function sendOutbox() {
    if (sending) return sending;
    var run = function () {
      return drain();
    };
    var job = navigator.locks ? navigator.locks.request("citygrid-m-outbox", run) : run();
    sending = job.catch(function () {}).then(function () {
      sending = null;
      return renderOutbox();
    });
    return sending;
  }

  // Sends the queue in order; stops at the first sign of no network (it is all kept).
  function drain() {
    return outbox.all().then(function (items) {
      items.sort(function (a, b) {
        return a.id - b.id;
      });
      var i = 0;
      function next() {
        if (i >= items.length) return null;
        var item = items[i++];
        // sent only under the account that queued it: the service records who reported
        if (item.state === "failed" || (item.user && item.user !== cfg.user)) return next();
        var step = item.kind === "case" ? sendCase(item) : sendPhoto(item);
        return step.then(function (go) {
          return go ? next() : null;
        });
      }
      return next();
    });
  }

  function keep(item, st, detail) {
    item.state = st;
    item.detail = detail || null;
    return outbox.put(item);
  }

  function sendCase(item) {
    return api("POST", "/api/cases", item.body, { "Idempotency-Key": item.key }).then(
      function (answer) {
        return readJson(answer).then(function (data) {
          if (answer.status === 200 || answer.status === 201) {
            return outbox.remember(item.key, data.id).then(function () {
              return outbox.remove(item.id);
            }).then(function () {
              announce(item.key, data.id, answer.status === 200);
              return true;
            });
          }
          if (answer.status === 401) return keep(item, "login").then(stop);
          if (answer.status >= 500 || answer.status === 429) return keep(item, "waiting").then(stop);
          return keep(item, "failed", refusal(answer.status, data)[1]).then(function () {
            announceRefusal(item, answer.status, data);
            return true;
          });
        });
      },
      function () {
        return keep(item, "waiting").then(stop); // no network: keep everything
      }
    );
  }

  function stop() {
    return false;
  }

  function sendPhoto(item) {
    var known = item.caseId ? Promise.resolve({ case_id: item.caseId }) : outbox.sent(item.caseKey);
    return known.then(function (sent) {
      if (!sent) return true; // its report is not through yet
      var where = { lon: item.lon, lat: item.lat, key: item.key };
      return uploadPhoto(sent.case_id, item.step, item.stage, item.blob, where).then(
        function (answer) {
          if (answer.ok) return outbox.remove(item.id).then(function () {
            return true;
          });
          if (answer.status === 404 || answer.status === 405) {
            return keep(item, "pending").then(function () {
              return true;
            });
          }
          if (answer.status === 401) return keep(item, "login").then(stop);
          if (answer.status >= 500 || answer.status === 429) return keep(item, "waiting").then(stop);
          return readJson(answer).then(function (data) {
            return keep(item, "failed", refusal(answer.status, data)[1]).then(function () {
              return true;
            });
          });
        },
        function () {
          return keep(item, "waiting").then(stop);
        }
      );
    });
  }

  function renderOutbox() {
    return outbox.all().then(function (items) {
      var list = $("outbox-items");
      list.textContent = "";
      items.forEach(function (item) {
        var label = item.kind === "case"
          ? t("item_case", { category: categoryName(item.body.category_code) })
          : t("item_photo", { stage: t("stage_" + item.stage) });
        var st = item.state === "failed"
          ? t("state_failed", { detail: item.detail || "" })
          : t("state_" + (item.state || "waiting"));
        var li = el("li", { "data-key": item.key, "data-kind": item.kind, "data-state": item.state || "waiting" });
        li.appendChild(el("span", {}, label + " · " + st));
        if (item.state === "failed") {
          var drop = el("button", { type: "button" }, t("remove"));
          drop.addEventListener("click", function () {
            outbox.remove(item.id).then(renderOutbox);
          });
          li.appendChild(drop);
        }
        list.appendChild(li);
      });
      $("outbox-count").textContent = String(items.length);
      $("outbox-empty").hidden = items.length > 0;
      return items;
    });
  }

  // -- network state ----------------------------------------------------------------------------

  function renderNet() {
    var on = navigator.onLine;
    var net = $("m-net");
    net.textContent = on ? t("online") : t("offline");
    net.className = "m-net " + (on ? "m-on" : "m-off");
  }

  window.addEventListener("online", function () {
    renderNet();
    sendOutbox().then(loadTasks);
  });
  window.addEventListener("offline", renderNet);

  // -- the map: my grids, my position -----------------------------------------------------------

  function initMap() {
    var map = L.map("m-map", { zoomControl: true });
    map.attributionControl.setPrefix("citygrid");
    (cfg.tiles || []).forEach(function (layer) {
      L.tileLayer(layer.url, layer.options || {}).addTo(map);
    });
    var b = cfg.bounds;
    var sw = shift(b[0], b[1]);
    var ne = shift(b[2], b[3]);
    map.fitBounds([[sw[1], sw[0]], [ne[1], ne[0]]]);
    state.map = map;
    state.gridLayer = L.geoJSON(null, {
      style: { color: "#1565c0", weight: 2, fillOpacity: 0.06 },
      onEachFeature: function (f, layer) {
        layer.bindTooltip((f.properties.name || "") + " " + f.id);
      },
    }).addTo(map);
    loadGrids();
  }

  function inScope(code) {
    if (!cfg.scope) return true;
    return cfg.scope.some(function (p) {
      return code.indexOf(p) === 0;
    });
  }

  // my unit grids: one request per prefix of my scope (only what is mine comes down, however
  // scattered), else the city's within its extent
  function gridQueries() {
    var q = "level=unit&limit=1000" + (cfg.datum === "gcj02" ? "&datum=gcj02" : "");
    if (!cfg.scope) return [q + "&bbox=" + cfg.bounds.join(",")];
    return cfg.scope.map(function (p) {
      return q + "&within=" + encodeURIComponent(p);
    });
  }

  function loadGrids() {
    var asked = gridQueries().map(function (q) {
      return api("GET", "/api/grids?" + q).then(function (answer) {
        if (!answer.ok) throw new Error("grids " + answer.status);
        return answer.json();
      });
    });
    return Promise.all(asked).then(function (pages) {
      var seen = {};
      var mine = [];
      pages.forEach(function (fc) {
        fc.features.forEach(function (f) {
          if (!seen[f.id] && inScope(String(f.id))) mine.push(f);
          seen[f.id] = true;
        });
      });
      state.gridLayer.clearLayers();
      state.gridLayer.addData(mine);
      var names = $("m-grids");
      names.textContent = "";
      if (!cfg.scope) names.appendChild(el("span", {}, t("whole_city") + " "));
      mine.forEach(function (f) {
        names.appendChild(el("span", { class: "m-grid", "data-code": f.id }, f.properties.name || f.id));
      });
      if (mine.length) state.map.fitBounds(state.gridLayer.getBounds());
    }).catch(function () {});
  }

  function onPosition(p) {
    state.pos = {
      lon: p.coords.longitude,
      lat: p.coords.latitude,
      accuracy: p.coords.accuracy,
      speed: p.coords.speed,
      time: new Date(p.timestamp || Date.now()).toISOString(),
    };
    var at = shift(state.pos.lon, state.pos.lat);
    var ll = [at[1], at[0]];
    if (state.map) {
      if (!state.marker) {
        state.circle = L.circle(ll, { radius: state.pos.accuracy || 10, weight: 1, fillOpacity: 0.1 }).addTo(state.map);
        state.marker = L.circleMarker(ll, { radius: 7, color: "#fff", weight: 2, fillColor: "#d32f2f", fillOpacity: 1 }).addTo(state.map);
      } else {
        state.marker.setLatLng(ll);
        state.circle.setLatLng(ll).setRadius(state.pos.accuracy || 10);
      }
    }
    $("m-position").textContent = t("position", {
      lon: state.pos.lon.toFixed(6),
      lat: state.pos.lat.toFixed(6),
      accuracy: Math.round(state.pos.accuracy || 0),
    });
    if (state.patrol) {
      state.fixes.push(fixOf(state.pos));
      if (!state.fixesSent) sendFixes(); // the first fix at once: the patrol is seen to work
    }
    if (!state.located && $("report-form")) locate();
  }

  function watchPosition() {
    if (!navigator.geolocation) return;
    navigator.geolocation.watchPosition(onPosition, function () {
      $("m-position").textContent = t("no_position");
    }, { enableHighAccuracy: true, maximumAge: 10000, timeout: 30000 });
  }

  // -- tasks ------------------------------------------------------------------------------------

  function categoryName(code) {
    var c = state.categories[code];
    return c ? c.name : code;
  }

  function loadCategories() {
    return api("GET", "/api/categories").then(function (answer) {
      if (!answer.ok) return;
      return answer.json().then(function (rows) {
        var select = $("report-category");
        var groups = {};
        rows.forEach(function (c) {
          state.categories[c.code] = c;
          if (!select) return;
          var label = c.major_name || c.family;
          if (!groups[label]) {
            groups[label] = el("optgroup", { label: label });
            select.appendChild(groups[label]);
          }
          groups[label].appendChild(el("option", { value: c.code }, c.code + " " + c.name));
        });
      });
    }).catch(function () {});
  }

  // the category's required fields (catalogue data: their names are the labels)
  function renderFields() {
    var holder = $("report-fields");
    holder.textContent = "";
    var c = state.categories[$("report-category").value];
    ((c && c.required_fields) || []).forEach(function (name) {
      var id = "report-field-" + name;
      holder.appendChild(el("label", { for: id }, t("required_field", { name: name })));
      holder.appendChild(el("input", { id: id, "data-field": name, maxlength: "200" }));
      holder.appendChild(el("p", { class: "m-error", "data-error-for": "fields." + name, role: "alert" }));
    });
  }

  function caseItem(c) {
    var li = el("li", { "data-case": c.id, "data-status": c.status });
    var b = el("button", { type: "button", class: "m-link" },
      t("case_title", { id: c.id, category: categoryName(c.category_code) }));
    b.addEventListener("click", function () {
      openCase(c);
    });
    li.appendChild(b);
    var info = [c.status_label, t("grid") + " " + (c.grid_code || "—")];
    if (c.deadline_at) info.push(t("deadline", { at: c.deadline_at.slice(0, 16).replace("T", " ") }));
    if (c.overdue) info.push(t("overdue"));
    li.appendChild(el("small", {}, info.join(" · ")));
    return li;
  }

  function fill(listId, rows, make) {
    var list = $(listId);
    if (!list) return;
    list.textContent = "";
    if (!rows.length) list.appendChild(el("li", { class: "m-none" }, t("none")));
    rows.forEach(function (r) {
      list.appendChild(make(r));
    });
  }

  function getList(path) {
    return api("GET", path).then(function (answer) {
      if (!answer.ok) return [];
      return answer.json().then(function (data) {
        return data.items || [];
      });
    }).catch(function () {
      return null; // offline and never seen: leave the list as it is
    });
  }

  function loadTasks() {
    var jobs = [];
    if (cfg.actions.indexOf("verify") >= 0) {
      jobs.push(getList("/api/cases?status=fed_back&limit=50").then(function (rows) {
        if (rows) fill("tasks-verify", rows, caseItem);
      }));
    } else {
      fill("tasks-verify", [], caseItem);
    }
    jobs.push(getList("/api/cases?status=reported,registered,dispatched,handling&limit=50").then(
      function (rows) {
        if (rows) fill("tasks-cases", rows, caseItem);
      }
    ));
    if (cfg.orders) {
      jobs.push(getList("/api/orders?status=issued,acknowledged,sent_back&limit=50").then(
        function (rows) {
          if (rows) {
            fill("tasks-orders", rows, function (o) {
              var li = el("li", { "data-order": o.id });
              li.appendChild(el("b", {}, t("order_title", { number: o.number })));
              li.appendChild(el("span", {}, " " + o.status_zh + " · " + o.demand));
              var due = t("deadline", { at: o.deadline_at.slice(0, 16).replace("T", " ") });
              li.appendChild(el("small", {}, due + (o.overdue ? " · " + t("overdue") : "")));
              return li;
            });
          }
        }
      ));
    }
    return Promise.all(jobs);
  }

  function openCase(c) {
    var form = $("case-detail");
    if (!form) return;
    state.current = c;
    clearErrors(form);
    $("case-detail-result").textContent = "";
    $("case-detail-title").textContent = t("case_title", { id: c.id, category: categoryName(c.category_code) });
    $("case-detail-info").textContent = [c.status_label, c.grid_code, c.description || ""].join(" · ");
    form.querySelectorAll("[data-action]").forEach(function (b) {
      b.disabled = c.allowed_actions.indexOf(b.dataset.action) < 0;
    });
    form.hidden = false;
    form.scrollIntoView();
  }

  function act(action) {
    var form = $("case-detail");
    var c = state.current;
    clearErrors(form);
    if (!navigator.onLine) return showError(form, "action", t("needs_network"));
    var body = { action: action, version: c.version, note: $("action-note").value || null };
    if (state.pos) {
      body.lon = state.pos.lon;
      body.lat = state.pos.lat;
      body.datum = "wgs84";
    }
    var photo = $("action-photo").files[0];
    api("POST", "/api/cases/" + c.id + "/actions", body).then(function (answer) {
      return readJson(answer).then(function (data) {
        if (!answer.ok) {
          var r = refusal(answer.status, data);
          return showError(form, r[0] === "note" ? "note" : "action", r[1]);
        }
        state.current = data;
        $("case-detail-result").textContent = t("act_done", { label: t("act_" + action) });
        $("action-note").value = "";
        var queued = photo
          ? outbox
              .add(photoItem(c.id, null, action === "feedback" ? "feedback" : "verification", "after", photo))
              .then(sendOutbox)
          : Promise.resolve();
        $("action-photo").value = "";
        return queued.then(loadTasks);
      });
    }, function () {
      showError(form, "action", t("needs_network"));
    });
  }

  // -- 随手拍: report a problem --------------------------------------------------------------------

  function locate() {
    if (!state.pos) return Promise.resolve();
    var p = state.pos;
    var q = "lon=" + p.lon + "&lat=" + p.lat;
    return api("GET", "/api/grids/locate?" + q).then(function (answer) {
      return readJson(answer).then(function (data) {
        var where = $("report-grid");
        var box = $("report-candidates");
        box.hidden = true;
        if (!answer.ok) {
          state.located = { grid: null };
          where.textContent = t("not_located");
          return;
        }
        state.located = data;
        where.textContent = t("located", { name: data.grid.name, code: data.grid.code });
        var holder = box.querySelector("div");
        holder.textContent = "";
        if (data.near_boundary) {
          data.candidates.forEach(function (c, i) {
            var id = "report-grid-" + i;
            var input = el("input", { type: "radio", name: "grid", id: id, value: c.code });
            if (c.code === data.grid.code) input.checked = true;
            var label = el("label", { for: id }, t("distance", { name: c.name, code: c.code, d: c.distance_m }));
            var row = el("div", { class: "m-candidate" });
            row.appendChild(input);
            row.appendChild(label);
            holder.appendChild(row);
          });
          box.hidden = false;
        }
      });
    }).catch(function () {
      state.located = null; // offline: the service places the report when it arrives
    });
  }

  function photoItem(caseId, caseKey, step, stage, blob) {
    var p = state.pos;
    return {
      kind: "photo",
      key: uuid(),
      caseId: caseId,
      caseKey: caseKey,
      step: step,
      stage: stage,
      blob: blob,
      lon: p ? p.lon : null,
      lat: p ? p.lat : null,
      user: cfg.user,
      created: new Date().toISOString(),
      state: "waiting",
    };
  }

  var pendingKeys = {};

  function announce(key, caseId, replayed) {
    if (!pendingKeys[key]) return;
    delete pendingKeys[key];
    $("report-result").textContent = t(replayed ? "replayed" : "sent", { id: caseId });
  }

  function announceRefusal(item, status, data) {
    if (!pendingKeys[item.key]) return;
    delete pendingKeys[item.key];
    var r = refusal(status, data);
    showError($("report-form"), r[0], r[1]);
  }

  function report(event) {
    event.preventDefault();
    var form = $("report-form");
    clearErrors(form);
    $("report-result").textContent = "";
    if (!state.pos) return showError(form, "lon,lat", t("need_position"));
    var code = $("report-category").value;
    if (!code) return showError(form, "category_code", t("need_category"));
    var key = uuid(); // made now and kept with the report: every retry sends the same one
    var body = {
      category_code: code,
      lon: state.pos.lon,
      lat: state.pos.lat,
      datum: "wgs84",
      source: "patrol",
      description: $("report-description").value.trim() || null,
      reported_at: new Date().toISOString(),
      fields: {},
    };
    var missing = null;
    $("report-fields").querySelectorAll("input[data-field]").forEach(function (input) {
      var value = input.value.trim();
      if (value) body.fields[input.dataset.field] = value;
      else missing = missing || input.dataset.field;
    });
    if (missing) return showError(form, "fields." + missing, t("need_field", { name: missing }));
    var chosen = form.querySelector('input[name="grid"]:checked');
    if (chosen && !$("report-candidates").hidden) body.grid_code = chosen.value;
    var photo = $("report-photo").files[0];
    var item = {
      kind: "case",
      key: key,
      body: body,
      user: cfg.user,
      created: body.reported_at,
      state: "waiting",
    };
    pendingKeys[key] = true;
    var saved = outbox.add(item);
    if (photo) {
      saved = saved.then(function () {
        return outbox.add(photoItem(null, key, "report", "before", photo));
      });
    }
    saved.then(function () {
      form.reset();
      renderFields();
      state.located = null;
      $("report-candidates").hidden = true;
      $("report-result").textContent = t("queued");
      return navigator.onLine ? sendOutbox() : renderOutbox();
    });
  }

  // -- patrol -----------------------------------------------------------------------------------

  function fixOf(p) {
    return {
      time: p.time,
      lon: p.lon,
      lat: p.lat,
      accuracy_m: p.accuracy === null ? null : p.accuracy,
      speed_mps: p.speed === null || p.speed < 0 ? null : p.speed,
    };
  }

  function renderPatrol() {
    var on = !!state.patrol;
    $("patrol-start").hidden = on;
    $("patrol-stop").hidden = !on;
    $("patrol-device").disabled = on;
    $("patrol-status").textContent = on
      ? t("patrol_on", { id: state.patrol.id, sent: state.fixesSent, waiting: state.fixes.length })
      : t("patrol_off");
  }

  // fixes are idempotent per device and time: a batch resent after a lost answer is harmless
  function sendFixes() {
    if (!state.patrol || !state.fixes.length || !navigator.onLine) return Promise.resolve();
    var batch = state.fixes.slice();
    var body = { device_id: state.patrol.device, datum: "wgs84", mode: "rows", fixes: batch };
    return api("POST", "/api/patrol/fixes", body).then(function (answer) {
      if (answer.ok || answer.status === 422) {
        state.fixes = state.fixes.slice(batch.length);
        if (answer.ok) state.fixesSent += batch.length;
      }
      renderPatrol();
    }).catch(function () {});
  }

  function startPatrol() {
    var form = $("patrol-form");
    clearErrors(form);
    var device = $("patrol-device").value.trim();
    if (!device) return showError(form, "device_id", t("need_device"));
    localStorage.setItem("citygrid-m-device", device);
    // the session starts by the phone's clock, the clock its fixes are stamped with
    var body = { device_id: device, started_at: new Date().toISOString() };
    api("POST", "/api/patrol/sessions", body).then(function (answer) {
      return readJson(answer).then(function (data) {
        if (!answer.ok) {
          var r = refusal(answer.status, data);
          return showError(form, r[0] || "device_id", r[1]);
        }
        state.patrol = { id: data.id, device: device };
        state.fixes = [];
        state.fixesSent = 0;
        localStorage.setItem("citygrid-m-patrol", JSON.stringify(state.patrol));
        renderPatrol();
        // a fresh fix to begin with (the last one seen was taken before the session); the
        // watch brings the next ones
        navigator.geolocation.getCurrentPosition(onPosition, function () {}, {
          enableHighAccuracy: true,
          maximumAge: 0,
          timeout: 20000,
        });
      });
    }, function () {
      showError(form, "device_id", t("needs_network"));
    });
  }

  function stopPatrol() {
    var form = $("patrol-form");
    clearErrors(form);
    sendFixes().then(function () {
      return api("POST", "/api/patrol/sessions/" + state.patrol.id + "/end", {});
    }).then(function (answer) {
      return readJson(answer).then(function (data) {
        if (!answer.ok && answer.status !== 409) {
          var r = refusal(answer.status, data);
          return showError(form, r[0] || "device_id", r[1]);
        }
        state.patrol = null;
        localStorage.removeItem("citygrid-m-patrol");
        renderPatrol();
      });
    }, function () {
      showError(form, "device_id", t("needs_network"));
    });
  }

  // -- wiring -----------------------------------------------------------------------------------

  function showTab(name) {
    document.querySelectorAll("[data-tab-panel]").forEach(function (p) {
      p.hidden = p.dataset.tabPanel !== name;
    });
    document.querySelectorAll("[data-tab]").forEach(function (b) {
      b.setAttribute("aria-selected", String(b.dataset.tab === name));
    });
    if (name === "map" && state.map) state.map.invalidateSize();
    if (name === "report" && !state.located) locate();
  }

  document.querySelectorAll("[data-tab]").forEach(function (b) {
    b.addEventListener("click", function () {
      showTab(b.dataset.tab);
    });
  });
  $("tasks-refresh").addEventListener("click", loadTasks);
  $("outbox-send").addEventListener("click", sendOutbox);
  if ($("case-detail")) {
    $("case-detail").querySelectorAll("[data-action]").forEach(function (b) {
      b.addEventListener("click", function () {
        act(b.dataset.action);
      });
    });
    $("case-detail-close").addEventListener("click", function () {
      $("case-detail").hidden = true;
    });
  }
  if ($("report-form")) {
    $("report-form").addEventListener("submit", report);
    $("report-category").addEventListener("change", renderFields);
    $("report-locate").addEventListener("click", locate);
  }
  if ($("patrol-form")) {
    $("patrol-device").value = localStorage.getItem("citygrid-m-device") || "";
    try {
      state.patrol = JSON.parse(localStorage.getItem("citygrid-m-patrol") || "null");
    } catch (e) {
      state.patrol = null;
    }
    $("patrol-start").addEventListener("click", startPatrol);
    $("patrol-stop").addEventListener("click", stopPatrol);
    renderPatrol();
    setInterval(sendFixes, 15000);
  }

  // logging out leaves no case data read from the API on the phone (the outbox stays: its
  // reports are sent when their account logs in again)
  if ($("m-logout")) {
    $("m-logout").addEventListener("submit", function (event) {
      if (!self.caches) return;
      event.preventDefault();
      var form = event.target;
      leaving = true;
      var settled = inflight.map(function (call) {
        return call.catch(function () {});
      });
      Promise.all(settled).then(function () {
        return caches.keys();
      }).then(function (names) {
        return Promise.all(names.filter(function (n) {
          return n.indexOf("citygrid-m-") === 0;
        }).map(function (n) {
          return caches.open(n).then(function (cache) {
            return cache.keys().then(function (requests) {
              return Promise.all(requests.filter(function (r) {
                return new URL(r.url).pathname.indexOf(base + "/api/") === 0;
              }).map(function (r) {
                return cache.delete(r);
              }));
            });
          });
        }));
      }).catch(function () {}).then(function () {
        form.submit();
      });
    });
  }

  showTab("map");
  renderNet();
  initMap();
  watchPosition();
  loadCategories().then(function () {
    return Promise.all([loadTasks(), sendOutbox()]);
  });
  setInterval(function () {
    if (navigator.onLine) sendOutbox();
  }, 30000);
  if ("serviceWorker" in navigator) {
    navigator.serviceWorker.register(cfg.worker, { scope: cfg.page }).catch(function () {});
  }
})();
