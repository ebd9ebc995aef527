/* citygrid dispatcher map runtime (layers/remote.py, layers/vectortiles.py, layers/controls.py).
 *
 * Layers that fetch their data from the service when they are first shown: GeoJSON aggregates
 * styled by `properties.fill`, PNG overlays, and vector tiles of grids and open cases. Each
 * layer adds its legend while it is on the map. Loaded after Leaflet; the tile layers also need
 * Leaflet.VectorGrid, which may load after this file (they are defined on first use).
 *
 * Every layer is kept in L.Citygrid.layers by its title, and marks `citygrid:drawn:<title>`
 * (performance.mark) once its first data is on the map, for tests and benchmarks.
 */
(function (L) {
  "use strict";

  // Leaflet.VectorGrid 1.3.0's canvas renderer calls L.DomEvent.fakeStop, which Leaflet 1.8
  // removed; stopping the click there keeps it from reaching the map a second time.
  if (!L.DomEvent.fakeStop) {
    L.DomEvent.fakeStop = function (e) {
      L.DomEvent.stopPropagation(e);
    };
  }

  var C = (L.Citygrid = {});
  C.layers = {};

  // The page's language (layers/i18n.py writes it as a JSON block, never run); a page
  // without one (a report saved to a file) shows the English msgids.
  var block = document.getElementById("citygrid-i18n");
  C.i18n = block ? JSON.parse(block.textContent) : { locale: "en", messages: {} };

  // a text of the catalogue, its {holes} filled from `values` (Babel finds the calls of _ with a literal text)
  var _ = (C._ = function (msgid, values) {
    var text = C.i18n.messages[msgid] || msgid;
    return text.replace(/\{(\w+)\}/g, function (hole, k) {
      return values && values[k] !== undefined ? values[k] : "";
    });
  });

  // A text of a service's answer (a legend) in the page's language: as it is in the
  // catalogue, else with its numbers as {n} holes ("Cases per 250 m hexagon"), else as given.
  C.translate = function (text) {
    text = String(text);
    if (C.i18n.messages[text]) return C.i18n.messages[text];
    var numbers = [];
    var pattern = text.replace(/\d+(?:\.\d+)?/g, function (n) {
      numbers.push(n);
      return "{n}";
    });
    var found = numbers.length ? C.i18n.messages[pattern] : null;
    if (!found) return text;
    var i = 0;
    return found.replace(/\{n\}/g, function () {
      return numbers[i++];
    });
  };

  // Panes above the heat layers (overlayPane, z-index 400) and below markers and popups.
  C.PANES = { citygridBoundaries: 410, citygridHotspots: 420, citygridCases: 430 };

  C.ensurePane = function (map, name) {
    if (!name || map.getPane(name)) return;
    var pane = map.createPane(name);
    if (C.PANES[name]) pane.style.zIndex = C.PANES[name];
  };

  function paneAware(layer) {
    layer.beforeAdd = function (map) {
      C.ensurePane(map, layer.options.pane);
    };
    return layer;
  }

  C.escape = function (value) {
    return String(value)
      .replace(/&/g, "&amp;")
      .replace(/</g, "&lt;")
      .replace(/>/g, "&gt;")
      .replace(/"/g, "&quot;")
      .replace(/'/g, "&#39;");
  };

  var FORMATS = {
    pct: function (v) {
      return Number(v).toLocaleString(C.i18n.locale, { style: "percent" });
    },
    num: function (v) {
      return Number(v).toLocaleString(C.i18n.locale, { maximumFractionDigits: 2 });
    },
    yesno: function (v) {
      return v ? _("yes") : _("no");
    },
    // a word of the service's answer, in the page's language
    tr: function (v) {
      return C.translate(v);
    },
    // an ISO time as the locale writes it, in the city's time zone
    time: function (v) {
      var t = new Date(v);
      if (isNaN(t.getTime())) return v;
      return t.toLocaleString(C.i18n.locale, { timeZone: C.i18n.timezone || undefined });
    },
  };

  // "{field}" or "{field|pct}" placeholders filled from properties; missing values show "—".
  C.format = function (template, props) {
    return template.replace(/\{(\w+)(?:\|(\w+))?\}/g, function (_, key, fmt) {
      var v = props[key];
      if (v === null || v === undefined || v === "") return "—";
      return C.escape(fmt && FORMATS[fmt] ? FORMATS[fmt](v) : v);
    });
  };

  C.fetchJson = function (url) {
    return fetch(url, { headers: { Accept: "application/json" } }).then(function (r) {
      return r
        .json()
        .catch(function () {
          return {};
        })
        .then(function (body) {
          if (!r.ok) {
            var d = body.detail;
            throw new Error(typeof d === "string" ? d : _("HTTP error {status}", { status: r.status }));
          }
          return body;
        });
    });
  };

  // -- controls ---------------------------------------------------------------------------
  function swatch(row) {
    var shape = row.shape || "box";
    var c = C.escape(row.color);
    if (shape === "line" || shape === "dash") {
      var dash = shape === "dash" ? "dashed" : "solid";
      var w = row.width || 2;
      return '<i class="citygrid-swatch-line" style="border-top:' + w + "px " + dash + " " + c + '"></i>';
    }
    if (shape === "circle") {
      return '<i class="citygrid-swatch-circle" style="background:' + c + '"></i>';
    }
    return '<i class="citygrid-swatch" style="background:' + c + '"></i>';
  }

  // Legends of the layers on the map, under the layer control (same corner: Leaflet stacks
  // them), the heat layer's first; scrolls when taller than the room left below.
  C.Legends = L.Control.extend({
    options: { position: "topright" },
    initialize: function (options) {
      L.setOptions(this, options);
      this._items = {};
      this._order = {};
    },
    onAdd: function (map) {
      this._div = L.DomUtil.create("div", "citygrid-legends leaflet-bar");
      L.DomEvent.disableClickPropagation(this._div);
      L.DomEvent.disableScrollPropagation(this._div);
      map.on("resize", this._fit, this);
      this._render();
      // created by the first layer shown, maybe before the layer control: once the page's
      // script has run, move below every other control of the corner
      var self = this;
      setTimeout(function () {
        if (self._div.parentNode) self._div.parentNode.appendChild(self._div);
        self._fit();
      }, 0);
      return this._div;
    },
    onRemove: function (map) {
      map.off("resize", this._fit, this);
    },
    show: function (key, legend, order) {
      if (!legend) return;
      this._items[key] = legend;
      this._order[key] = order === undefined ? 1 : order;
      this._render();
    },
    hide: function (key) {
      delete this._items[key];
      this._render();
    },
    _fit: function () {
      if (!this._div || !this._map) return;
      var room = this._map.getSize().y - this._div.offsetTop - 30;
      this._div.style.maxHeight = Math.max(room, 120) + "px";
    },
    _render: function () {
      if (!this._div) return;
      var html = "";
      var order = this._order;
      var keys = Object.keys(this._items).sort(function (a, b) {
        return order[a] - order[b];
      });
      for (var i = 0; i < keys.length; i++) {
        var key = keys[i];
        var legend = this._items[key];
        html += '<div class="citygrid-legend" data-layer="' + C.escape(key) + '">';
        html += '<div class="citygrid-legend-title">' + C.escape(C.translate(legend.title)) + "</div>";
        (legend.rows || []).forEach(function (row) {
          html += '<div class="citygrid-legend-row">' + swatch(row) + C.escape(C.translate(row.label)) + "</div>";
        });
        html += "</div>";
      }
      this._div.innerHTML = html;
      this._div.style.display = html ? "" : "none";
      this._fit();
    },
  });

  C.legends = function (map) {
    if (!map._citygridLegends) map._citygridLegends = new C.Legends().addTo(map);
    return map._citygridLegends;
  };

  // Loading notes and failures of the layers, one line per layer.
  C.Status = L.Control.extend({
    options: { position: "bottomleft" },
    initialize: function (options) {
      L.setOptions(this, options);
      this._lines = {};
    },
    onAdd: function () {
      this._div = L.DomUtil.create("div", "citygrid-status");
      this._render();
      return this._div;
    },
    set: function (key, text, kind) {
      this._lines[key] = { text: text, kind: kind || "info" };
      this._render();
    },
    clear: function (key) {
      delete this._lines[key];
      this._render();
    },
    _render: function () {
      if (!this._div) return;
      var html = "";
      for (var key in this._lines) {
        var line = this._lines[key];
        html +=
          '<div class="citygrid-status-' + line.kind + '" data-layer="' + C.escape(key) + '">' +
          C.escape(line.text) + "</div>";
      }
      this._div.innerHTML = html;
      this._div.style.display = html ? "" : "none";
    },
  });

  C.status = function (map) {
    if (!map._citygridStatus) map._citygridStatus = new C.Status().addTo(map);
    return map._citygridStatus;
  };

  function drawn(layer) {
    layer.drawn = true;
    L.Util.requestAnimFrame(function () {
      if (window.performance && performance.mark) {
        performance.mark("citygrid:drawn:" + layer.options.title);
      }
      layer.fire("citygrid:drawn");
    });
  }

  // -- layers fed by a JSON endpoint ----------------------------------------------------------
  // Mixed into GeoJSON and image layers: fetch once on first add, keep the legend in step.
  var Remote = {
    _remoteAdd: function (map) {
      var title = this.options.title;
      if (this._legend) C.legends(map).show(title, this._legend, this.options.legendOrder);
      if (this._note) C.status(map).set(title, this._note, "info");
      if (this._state === "loaded" && !this.drawn) drawn(this); // removed while it loaded
      if (this._state === "loading" || this._state === "loaded") return;
      this._state = "loading";
      C.status(map).set(title, _("Loading {title} …", { title: title }), "info");
      var self = this;
      C.fetchJson(this._url)
        .then(function (body) {
          self._state = "loaded";
          self._receive(body);
          self._legend = body.legend || self.options.legend || null;
          self._note =
            self.count === 0 ? _("{title}: nothing to show for this filter", { title: title }) : null;
          if (!self._map) return;
          C.status(map).clear(title);
          if (self._note) C.status(map).set(title, self._note, "info");
          C.legends(map).show(title, self._legend, self.options.legendOrder);
          drawn(self);
        })
        .catch(function (err) {
          self._state = "idle"; // try again when the layer is shown again
          if (self._map) {
            C.status(map).set(title, _("{title}: {error}", { title: title, error: err.message }), "error");
          }
          if (window.console) console.warn("citygrid: " + title + ": " + err.message);
        });
    },
    _remoteRemove: function (map) {
      C.legends(map).hide(this.options.title);
      C.status(map).clear(this.options.title);
    },
  };

  C.RemoteGeoJson = L.GeoJSON.extend({
    includes: Remote,
    options: {
      title: "layer",
      popup: null,
      tooltip: null,
      colorBy: null, // {property, colors: {value: colour}, fallback}
      zoneProperty: null, // a property holding a second geometry drawn as a dashed outline
      lookups: null, // {property: {value: label}} → properties.<property>_label
      defaultFill: "#888888",
      stroke: null, // outline colour; null: the fill colour
      weight: 1,
      fillOpacity: 0.7,
      radius: 6,
      legend: null,
    },
    initialize: function (url, options) {
      var self = this;
      L.GeoJSON.prototype.initialize.call(
        this,
        null,
        L.extend({}, options, {
          style: function (f) {
            return self._style(f);
          },
          pointToLayer: function (f, latlng) {
            return L.circleMarker(latlng, L.extend({ pane: self.options.pane }, self._style(f)));
          },
          onEachFeature: function (f, layer) {
            self._bind(f, layer);
          },
        })
      );
      this._url = url;
      this._state = "idle";
      this.count = null;
      C.layers[this.options.title] = paneAware(this);
    },
    onAdd: function (map) {
      L.GeoJSON.prototype.onAdd.call(this, map);
      this._remoteAdd(map);
    },
    onRemove: function (map) {
      this._remoteRemove(map);
      L.GeoJSON.prototype.onRemove.call(this, map);
    },
    _colour: function (p) {
      var o = this.options;
      if (p.fill) return p.fill;
      if (o.colorBy) return o.colorBy.colors[p[o.colorBy.property]] || o.colorBy.fallback || o.defaultFill;
      return o.defaultFill;
    },
    _style: function (f) {
      var o = this.options;
      var fill = this._colour(f.properties || {});
      return {
        fillColor: fill,
        fillOpacity: o.fillOpacity,
        color: o.stroke || fill,
        weight: o.weight,
        opacity: 0.9,
        radius: o.radius,
      };
    },
    _bind: function (f, layer) {
      var o = this.options;
      var p = L.extend({}, f.properties || {});
      for (var key in o.lookups || {}) {
        p[key + "_label"] = o.lookups[key][p[key]] || p[key];
      }
      if (o.popup) {
        layer.bindPopup(
          function () {
            return C.format(o.popup, p);
          },
          { maxWidth: 360, className: "citygrid-popup" }
        );
      }
      if (o.tooltip) layer.bindTooltip(C.format(o.tooltip, p), { sticky: true });
    },
    _receive: function (body) {
      var o = this.options;
      var features = body.features || [];
      this.count = features.length;
      if (o.zoneProperty) {
        var self = this;
        features.forEach(function (f) {
          var zone = f.properties && f.properties[o.zoneProperty];
          if (!zone) return;
          var colour = self._colour(f.properties);
          self.addLayer(
            L.geoJSON(zone, {
              pane: o.pane,
              interactive: false,
              style: { color: colour, weight: 1, dashArray: "4 3", fillColor: colour, fillOpacity: 0.08 },
            })
          );
        });
      }
      this.addData({ type: "FeatureCollection", features: features });
    },
  });

  C.RemoteImageOverlay = L.LayerGroup.extend({
    includes: Remote,
    options: { title: "layer", opacity: 0.75, legend: null },
    initialize: function (url, options) {
      L.LayerGroup.prototype.initialize.call(this, [], options);
      L.setOptions(this, options);
      this._url = url;
      this._state = "idle";
      this.count = null;
      C.layers[this.options.title] = paneAware(this);
    },
    onAdd: function (map) {
      L.LayerGroup.prototype.onAdd.call(this, map);
      this._remoteAdd(map);
    },
    onRemove: function (map) {
      this._remoteRemove(map);
      L.LayerGroup.prototype.onRemove.call(this, map);
    },
    _receive: function (body) {
      this.count = body.points === undefined ? 1 : body.points;
      this.addLayer(
        L.imageOverlay(body.image, body.bounds, {
          opacity: this.options.opacity,
          pane: this.options.pane || "overlayPane",
          className: "citygrid-surface",
          alt: this.options.title,
        })
      );
    },
  });

  // An empty layer: the "no heat layer" choice among the mutually exclusive heat layers.
  C.Nothing = L.LayerGroup.extend({
    initialize: function (options) {
      L.LayerGroup.prototype.initialize.call(this, [], options);
      L.setOptions(this, options);
      C.layers[this.options.title] = this;
    },
  });

  // Static legend shown while a layer is on (for layers whose data carries none).
  C.attachLegend = function (layer, legend) {
    // Leaflet fires "remove" before it forgets the layer's map
    layer.on("add", function () {
      C.legends(layer._map).show(layer.options.title, legend, layer.options.legendOrder);
    });
    layer.on("remove", function () {
      C.legends(layer._map).hide(layer.options.title);
      C.status(layer._map).clear(layer.options.title);
    });
    return layer;
  };

  // -- vector tiles ----------------------------------------------------------------------------
  function tileLoadMarks(layer) {
    layer.on("load", function () {
      if (!layer.drawn) drawn(layer);
    });
    layer.on("tileerror", function (e) {
      if (layer._map) {
        var failed = _("{title}: a tile failed", { title: layer.options.title });
        C.status(layer._map).set(layer.options.title, failed, "error");
      }
      if (window.console) console.warn("citygrid: tile failed", e.coords);
    });
    return layer;
  }

  // Grid boundaries: one line style per level (the server picks the levels by zoom).
  C.gridBoundaries = function (url, options) {
    var styles = options.levelStyles || {};
    var layer = L.vectorGrid.protobuf(
      url,
      L.extend({}, options, {
        rendererFactory: L.svg.tile,
        interactive: false,
        vectorTileLayerStyles: {
          grids: function (p) {
            return L.extend({ fill: false, weight: 1, color: "#666666", opacity: 0.9 }, styles[p.level] || {});
          },
        },
      })
    );
    C.layers[options.title] = paneAware(tileLoadMarks(layer));
    if (options.legend) C.attachLegend(layer, options.legend);
    return layer;
  };

  var CaseTiles = null;

  // Open cases: `cases` points coloured by status (red when overdue) and, at lower zooms,
  // `case_clusters` (clustered on the server) as circles sized by count, labelled with it.
  function caseTilesClass() {
    if (CaseTiles) return CaseTiles;
    var Base = L.VectorGrid.Protobuf;
    CaseTiles = Base.extend({
      _getVectorTilePromise: function (coords) {
        var self = this;
        var promise = Base.prototype._getVectorTilePromise.call(this, coords).then(function (tile) {
          self._coarsen(tile);
          return tile;
        });
        this._lastPromise = promise;
        return promise;
      },
      // The server's cluster cells may be finer than circles can be drawn apart: merge them
      // into cells of `clusterPx` screen pixels (count-weighted mean position). A case is in
      // exactly one tile's clusters, so nothing is counted twice.
      _coarsen: function (tile) {
        var layer = tile.layers && tile.layers.case_clusters;
        if (!layer || !layer.features) return;
        var cell = (layer.extent * (this.options.clusterPx || 32)) / this.getTileSize().x;
        var cells = {};
        layer.features.forEach(function (f) {
          var pt = f.geometry[0][0] || f.geometry[0];
          var key = Math.floor(pt.x / cell) + ":" + Math.floor(pt.y / cell);
          var n = Number(f.properties.count) || 0;
          var c = cells[key] || (cells[key] = { n: 0, late: 0, x: 0, y: 0 });
          c.n += n;
          c.late += Number(f.properties.overdue) || 0;
          c.x += pt.x * n;
          c.y += pt.y * n;
        });
        layer.features = Object.keys(cells).map(function (key) {
          var c = cells[key];
          return {
            type: 1,
            properties: { count: c.n, overdue: c.late },
            geometry: [[{ x: c.x / c.n, y: c.y / c.n }]],
          };
        });
      },
      createTile: function (coords, done) {
        var el = Base.prototype.createTile.call(this, coords, done);
        var self = this;
        el.style.overflow = "visible"; // cluster circles near a tile edge are not cut
        // runs after VectorGrid drew the tile (then-callbacks run in the order they were added)
        this._lastPromise.then(function (tile) {
          self._label(el, tile);
        });
        return el;
      },
      _label: function (svg, tile) {
        var layer = tile.layers && tile.layers.case_clusters;
        if (!layer || !layer.features) return;
        var scale = this.getTileSize().x / layer.extent;
        layer.features.forEach(function (f) {
          if (f.properties.count < 2) return; // a lone case needs no number
          var pt = f.geometry[0][0] || f.geometry[0];
          var text = L.SVG.create("text");
          text.setAttribute("x", pt.x * scale);
          text.setAttribute("y", pt.y * scale);
          text.setAttribute("class", "citygrid-cluster-label");
          text.setAttribute("text-anchor", "middle");
          text.setAttribute("dominant-baseline", "central");
          text.textContent = String(f.properties.count);
          svg.appendChild(text);
        });
      },
    });
    return CaseTiles;
  }

  var HeatTiles = null;

  // Heat layers as tiles: unit grids filled with their `fill` property. Every feature seen is
  // kept in layer.features by grid code (its properties), for popups, tests and benchmarks.
  function heatTilesClass() {
    if (HeatTiles) return HeatTiles;
    var Base = L.VectorGrid.Protobuf;
    HeatTiles = Base.extend({
      // 512-pixel tiles: a 512-pixel tile at zoom z is the server's tile of zoom z - 1 (a
      // quarter of the requests of 256-pixel tiles; VectorGrid ignores Leaflet's zoomOffset)
      _getVectorTilePromise: function (coords, tileBounds) {
        var self = this;
        var asked = coords;
        if (this.options.tileZoomOffset) {
          asked = L.point(coords.x, coords.y);
          asked.z = coords.z + this.options.tileZoomOffset;
        }
        return Base.prototype._getVectorTilePromise.call(this, asked, tileBounds).then(function (tile) {
          var layer = tile.layers && tile.layers.heat;
          (layer ? layer.features : []).forEach(function (f) {
            if (f.properties && f.properties.code) self.features[f.properties.code] = f.properties;
          });
          return tile;
        });
      },
    });
    return HeatTiles;
  }

  C.heatTiles = function (url, options) {
    var layer = new (heatTilesClass())(
      url,
      L.extend({}, options, {
        // canvas: a city's 30,000 grids as SVG paths would cost the browser seconds (the
        // fakeStop shim above makes VectorGrid's canvas renderer work with Leaflet 1.9)
        rendererFactory: L.canvas.tile,
        interactive: true,
        vectorTileLayerStyles: {
          heat: function (p) {
            var fill = p.fill || options.defaultFill;
            return {
              fill: true,
              fillColor: fill,
              fillOpacity: options.fillOpacity,
              color: options.stroke || fill,
              weight: options.weight,
              opacity: 0.9,
            };
          },
        },
      })
    );
    layer.features = {};
    // a tile carries each grid's code and colour only: the popup's fields are the stored
    // layer's, fetched on the click (the legend's URL with the grid's code)
    layer.on("click", function (e) {
      var p = e.layer && e.layer.properties;
      if (!p || !p.code || !layer._map || !options.popup) return;
      var map = layer._map;
      var sep = options.legendUrl.indexOf("?") < 0 ? "?" : "&";
      C.fetchJson(options.legendUrl + sep + "code=" + encodeURIComponent(p.code))
        .then(function (body) {
          var props = L.extend({}, p, body.properties || {});
          L.popup({ maxWidth: 360, className: "citygrid-popup" })
            .setLatLng(e.latlng)
            .setContent(C.format(options.popup, props))
            .openOn(map);
        })
        .catch(function (err) {
          C.status(map).set(title, _("{title}: {error}", { title: title, error: err.message }), "error");
        });
    });
    // the legend of the layer's filter: fetched once, when the layer is first shown
    var title = options.title;
    layer.on("add", function () {
      var map = layer._map;
      if (layer._legend) {
        C.legends(map).show(title, layer._legend, options.legendOrder);
        if (layer._note) C.status(map).set(title, layer._note, "info");
        return;
      }
      if (layer._legendLoading) return;
      layer._legendLoading = true;
      C.fetchJson(options.legendUrl)
        .then(function (body) {
          layer._legend = body.legend || options.legend || null;
          layer.count = body.count;
          layer._note =
            body.count === 0 ? _("{title}: nothing to show for this filter", { title: title }) : null;
          if (!layer._map) return;
          C.legends(layer._map).show(title, layer._legend, options.legendOrder);
          if (layer._note) C.status(layer._map).set(title, layer._note, "info");
        })
        .catch(function (err) {
          if (layer._map) {
            C.status(layer._map).set(title, _("{title}: {error}", { title: title, error: err.message }), "error");
          }
          if (window.console) console.warn("citygrid: " + title + ": " + err.message);
        })
        .then(function () {
          layer._legendLoading = false;
        });
    });
    layer.on("remove", function () {
      if (!layer._map) return;
      C.legends(layer._map).hide(title);
      C.status(layer._map).clear(title);
    });
    C.layers[title] = paneAware(tileLoadMarks(layer));
    return layer;
  };

  C.clusterRadius = function (count) {
    return Math.min(16, 6 + 3.5 * (Math.log(Math.max(count, 1)) / Math.LN10));
  };

  C.caseTiles = function (url, options) {
    var colours = options.statusColors || {};
    var labels = options.statusLabels || {};
    var overdue = options.overdueColor || "#e31a1c";
    var layer = new (caseTilesClass())(
      url,
      L.extend({}, options, {
        rendererFactory: L.svg.tile,
        interactive: true,
        vectorTileLayerStyles: {
          cases: function (p) {
            var late = p.overdue === true || p.overdue === "true";
            return {
              radius: 5,
              fill: true,
              fillColor: late ? overdue : colours[p.status] || "#777777",
              fillOpacity: 0.95,
              color: late ? "#67000d" : "#ffffff",
              weight: 1,
            };
          },
          case_clusters: function (p) {
            return {
              radius: C.clusterRadius(p.count),
              fill: true,
              fillColor: p.overdue > 0 ? options.clusterOverdueColor : options.clusterColor,
              fillOpacity: 0.85,
              color: "#ffffff",
              weight: 1.5,
            };
          },
        },
      })
    );
    layer.on("click", function (e) {
      var p = e.layer && e.layer.properties;
      var map = layer._map;
      if (!p || !map) return;
      if (p.count !== undefined) {
        map.setView(e.latlng, Math.min(map.getZoom() + 2, options.pointsFromZoom || 14));
        return;
      }
      var late = p.overdue === true || p.overdue === "true";
      var props = L.extend({}, p, { status_label: labels[p.status] || p.status, late: late });
      L.popup({ className: "citygrid-popup" })
        .setLatLng(e.latlng)
        .setContent(C.format(options.popup || "{id}", props))
        .openOn(map);
    });
    C.layers[options.title] = paneAware(tileLoadMarks(layer));
    if (options.legend) C.attachLegend(layer, options.legend);
    return layer;
  };
})(L);
