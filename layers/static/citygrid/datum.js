/*
 * WGS 84 → GCJ-02 for positions the browser itself knows (the phone's GPS), to draw them on a
 * GCJ-02 base map (AMap): the same formula as gis/datum.py (wgs84_to_gcj02). What the API
 * sends is already in the datum asked for (datum=gcj02); what the pages send stays WGS 84.
 * Loaded before the page's own script (the phone page, the citizen's pages).
 */
(function () {
  "use strict";

  var A = 6378245.0;
  var EE = 0.00669342162296594323;

  function gcj02(lon, lat) {
    if (lon < 72.004 || lon > 137.8347 || lat < 0.8293 || lat > 55.8271) return [lon, lat];
    var x = lon - 105.0;
    var y = lat - 35.0;
    var pi = Math.PI;
    var common = ((20.0 * Math.sin(6.0 * x * pi) + 20.0 * Math.sin(2.0 * x * pi)) * 2.0) / 3.0;
    var dlat = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y +
      0.2 * Math.sqrt(Math.abs(x)) + common +
      ((20.0 * Math.sin(y * pi) + 40.0 * Math.sin((y / 3.0) * pi)) * 2.0) / 3.0 +
      ((160.0 * Math.sin((y / 12.0) * pi) + 320.0 * Math.sin((y * pi) / 30.0)) * 2.0) / 3.0;
    var dlon = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y +
      0.1 * Math.sqrt(Math.abs(x)) + common +
      ((20.0 * Math.sin(x * pi) + 40.0 * Math.sin((x / 3.0) * pi)) * 2.0) / 3.0 +
      ((150.0 * Math.sin((x / 12.0) * pi) + 300.0 * Math.sin((x / 30.0) * pi)) * 2.0) / 3.0;
    var rad = (lat / 180.0) * pi;
    var magic = 1.0 - EE * Math.sin(rad) * Math.sin(rad);
    var sq = Math.sqrt(magic);
    dlat = (dlat * 180.0) / (((A * (1.0 - EE)) / (magic * sq)) * pi);
    dlon = (dlon * 180.0) / ((A / sq) * Math.cos(rad) * pi);
    return [lon + dlon, lat + dlat];
  }

  window.CitygridDatum = {
    gcj02: gcj02,
    // a WGS 84 position as drawn on a base map in `datum` ("wgs84" or "gcj02"): [lon, lat]
    shift: function (datum, lon, lat) {
      return datum === "gcj02" ? gcj02(lon, lat) : [lon, lat];
    },
  };
})();
