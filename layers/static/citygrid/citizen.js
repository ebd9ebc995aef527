/* citygrid citizen's pages (layers/citizen.py): the report form (随手拍) and the public
 * problem map.
 *
 * The report form posts multipart to the API named in data-api: the Open311 fields
 * (service_code, lat, long, datum, description, phone), the photo as `media`, this phone's
 * device token as `device_id` (kept in localStorage: the per-device limit counts it) and an
 * Idempotency-Key made once per report, so a retry after a lost answer gives the same
 * tracking number instead of a second case. An error answer that names a field
 * ({"detail", "field"}) is shown next to that field.
 */
(function () {
  "use strict";

  var I18N = JSON.parse(document.getElementById("citygrid-i18n").textContent);

  // a text of the catalogue, its {holes} filled from `values` (Babel finds the calls of _ with a literal text)
  function _(msgid, values) {
    var text = I18N.messages[msgid] || msgid;
    return text.replace(/\{(\w+)\}/g, function (hole, k) {
      return values && values[k] !== undefined ? values[k] : "";
    });
  }
  var DATE = new Intl.DateTimeFormat(I18N.locale, { dateStyle: "medium", timeZone: I18N.timezone });
  var COLOURS = { closed: "#2e7d32", rejected: "#757575" };

  function random(n) {
    var bytes = new Uint8Array(n);
    window.crypto.getRandomValues(bytes);
    return Array.prototype.map
      .call(bytes, function (b) {
        return ("0" + b.toString(16)).slice(-2);
      })
      .join("");
  }

  function deviceToken() {
    var key = "citygrid-device";
    var token = null;
    try {
      token = window.localStorage.getItem(key);
      if (!token) {
        token = random(16);
        window.localStorage.setItem(key, token);
      }
    } catch (e) {
      token = token || random(16); // private mode: a token for this page's life
    }
    return token;
  }

  function baseMap(node) {
    var cfg = JSON.parse(node.dataset.map);
    return cfg;
  }

  function makeMap(id, cfg) {
    var map = L.map(id, { zoomControl: true, attributionControl: true });
    map.attributionControl.setPrefix("citygrid");
    (cfg.tiles || []).forEach(function (t) {
      L.tileLayer(t.tiles, {
        attribution: t.attr,
        maxZoom: t.max_zoom || 18,
        subdomains: t.subdomains || "abc",
      }).addTo(map);
    });
    var b = cfg.bounds;
    var city = L.latLngBounds([b[1], b[0]], [b[3], b[2]]);
    L.rectangle(city, { color: "#1565c0", weight: 2, fill: false, interactive: false }).addTo(map);
    map.fitBounds(city);
    return map;
  }

  // -- the report form ------------------------------------------------------------------------
  function reportForm(root) {
    var cfg = baseMap(root);
    var form = document.getElementById("report-form");
    var map = makeMap("report-map", cfg);
    var marker = null;
    var key = null; // one Idempotency-Key per report, kept across retries
    var where = document.getElementById("report-where");

    // the position sent (lat, lng in `datum`) and where it is drawn on the base map
    function place(lat, lng, datum, label, drawn) {
      document.getElementById("report-lat").value = lat.toFixed(7);
      document.getElementById("report-long").value = lng.toFixed(7);
      document.getElementById("report-datum").value = datum;
      var at = drawn || [lat, lng];
      if (marker) marker.setLatLng(at);
      else marker = L.circleMarker(at, { radius: 9, color: "#c62828", weight: 3 }).addTo(map);
      where.textContent = label;
      showError("lat,long", "");
      key = null;
    }

    map.on("click", function (e) {
      place(e.latlng.lat, e.latlng.lng, cfg.datum, _("Position marked on the map"));
    });
    document.getElementById("report-locate").addEventListener("click", function () {
      if (!navigator.geolocation) {
        where.textContent = _("This phone cannot tell its position: tap the map instead");
        return;
      }
      where.textContent = _("Finding your position…");
      navigator.geolocation.getCurrentPosition(
        function (p) {
          // the browser answers WGS 84: sent as it is, drawn in the base map's datum
          var lat = p.coords.latitude;
          var lng = p.coords.longitude;
          var s = window.CitygridDatum.shift(cfg.datum, lng, lat);
          place(lat, lng, "wgs84", _("Your position"), [s[1], s[0]]);
          map.setView([s[1], s[0]], 17);
        },
        function () {
          where.textContent = _("Your position is not available: tap the map instead");
        },
        { enableHighAccuracy: true, timeout: 15000 }
      );
    });
    form.addEventListener("change", function () {
      key = null; // a changed report is a new report
    });

    function showError(field, text) {
      var node = form.querySelector('[data-error-for="' + field + '"]');
      if (!node) node = form.querySelector('[data-error-for=""]');
      node.textContent = text;
    }

    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      Array.prototype.forEach.call(form.querySelectorAll("[data-error-for]"), function (n) {
        n.textContent = "";
      });
      if (!form.service_code.value) return showError("service_code", _("Choose a category"));
      if (!document.getElementById("report-lat").value)
        return showError("lat,long", _("Tap the map where the problem is, or use your position"));
      var body = new FormData(form);
      if (!form.media.files.length) body.delete("media");
      body.append("device_id", deviceToken());
      key = key || random(16);
      var button = document.getElementById("report-submit");
      button.disabled = true;
      fetch(root.dataset.api + "?lang=" + encodeURIComponent(I18N.locale), {
        method: "POST",
        body: body,
        headers: { "Idempotency-Key": key, Accept: "application/json" },
        credentials: "same-origin",
      })
        .then(function (r) {
          return r.json().then(function (j) {
            return { ok: r.ok, status: r.status, body: j };
          });
        })
        .then(function (a) {
          button.disabled = false;
          if (!a.ok) {
            var detail = a.body.detail;
            var field = a.body.field || "";
            if (Array.isArray(detail)) {
              field = (detail[0].loc || []).slice(-1)[0] || "";
              detail = detail[0].msg;
            }
            if (a.status === 429) detail = _("Too many reports from this phone or network; please try again later.");
            return showError(field, detail || _("The report could not be sent; please try again."));
          }
          document.getElementById("report-number").textContent = a.body.tracking_number;
          document.getElementById("report-duplicate").hidden = !a.body.duplicate;
          document.getElementById("report-status-link").href =
            root.dataset.status + "?number=" + encodeURIComponent(a.body.tracking_number);
          form.hidden = true;
          document.getElementById("report-done").hidden = false;
        })
        .catch(function () {
          button.disabled = false;
          showError("", _("No connection: your report was not sent yet; try again."));
        });
    });
  }

  // -- the problem map ------------------------------------------------------------------------
  function problemMap(root) {
    var cfg = baseMap(root);
    var map = makeMap("public-map", cfg);
    var layer = L.layerGroup().addTo(map);
    var features = [];
    var category = document.getElementById("map-category");
    var status = document.getElementById("map-status");
    var count = document.getElementById("map-count");

    function draw() {
      layer.clearLayers();
      var shown = features.filter(function (f) {
        var p = f.properties;
        return (!category.value || p.category_code === category.value) && (!status.value || p.status === status.value);
      });
      shown.forEach(function (f) {
        var p = f.properties;
        var c = f.geometry.coordinates;
        var colour = COLOURS[p.status] || "#e65100";
        L.circleMarker([c[1], c[0]], { radius: 7, color: colour, fillColor: colour, fillOpacity: 0.6 })
          .bindPopup(
            "<b>" + escapeHtml(p.category) + "</b><br>" + escapeHtml(_(p.status_text)) + "<br>" + DATE.format(new Date(p.reported_on + "T12:00:00Z"))
          )
          .addTo(layer);
      });
      count.textContent = _("{count} reports shown", { count: shown.length });
    }
    function escapeHtml(s) {
      var d = document.createElement("div");
      d.textContent = s;
      return d.innerHTML;
    }
    category.addEventListener("change", draw);
    status.addEventListener("change", draw);
    fetch(root.dataset.cases + "?datum=" + encodeURIComponent(cfg.datum), { credentials: "same-origin" })
      .then(function (r) {
        return r.json();
      })
      .then(function (fc) {
        features = fc.features || [];
        draw();
      });
  }

  function start() {
    var report = document.getElementById("citizen-report");
    if (report) reportForm(report);
    var pm = document.getElementById("citizen-map");
    if (pm) problemMap(pm);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
