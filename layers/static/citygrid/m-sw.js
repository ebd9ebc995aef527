/* citygrid phone page's service worker (layers/mobile.py serves it at /m/sw.js, after a line
 * setting self.CITYGRID = {version, shell, page, api, static}).
 *
 * - install: keep the app shell (the page, its script and style, Leaflet) in a cache named
 *   after the version; activate drops the caches of older versions.
 * - the page (a navigation under /m/): network first, the cached shell without network.
 * - /static/: cache first (the files are versioned by the worker's version).
 * - GET /api/: network first, the last answer seen without network (tasks, grids and the
 *   catalogue stay readable offline).
 * Writes (POST …) are never touched: the page queues them itself in IndexedDB and sends
 * each once, with its idempotency key, when the network returns.
 */
(function () {
  "use strict";
  var C = self.CITYGRID;
  var CACHE = "citygrid-m-" + C.version;

  self.addEventListener("install", function (event) {
    event.waitUntil(
      caches.open(CACHE).then(function (cache) {
        return Promise.all(
          C.shell.map(function (url) {
            return fetch(url, { credentials: "same-origin" }).then(function (answer) {
              // a redirect to the login form is no shell worth keeping
              if (answer.ok && !answer.redirected) return cache.put(url, answer);
            });
          })
        );
      }).then(function () {
        return self.skipWaiting();
      })
    );
  });

  self.addEventListener("activate", function (event) {
    event.waitUntil(
      caches.keys().then(function (names) {
        return Promise.all(
          names
            .filter(function (n) {
              return n.indexOf("citygrid-m-") === 0 && n !== CACHE;
            })
            .map(function (n) {
              return caches.delete(n);
            })
        );
      }).then(function () {
        return self.clients.claim();
      })
    );
  });

  function networkFirst(request, key) {
    return fetch(request).then(function (answer) {
      if (!answer.ok || answer.redirected) return answer;
      var copy = answer.clone();
      // kept before the page gets the answer: once its fetch is settled the copy is stored
      // (the page's logout deletes the copies after waiting for its fetches)
      return caches.open(CACHE).then(function (cache) {
        return cache.put(key || request, copy);
      }).then(function () {
        return answer;
      }, function () {
        return answer;
      });
    }, function () {
      return caches.match(key || request).then(function (hit) {
        return hit || Response.error();
      });
    });
  }

  self.addEventListener("fetch", function (event) {
    var request = event.request;
    if (request.method !== "GET") return;
    var url = new URL(request.url);
    if (url.origin !== self.location.origin) return;
    if (request.mode === "navigate" && url.pathname === C.page) {
      event.respondWith(networkFirst(request, C.page));
    } else if (url.pathname.indexOf(C.static) === 0) {
      event.respondWith(
        caches.match(request).then(function (hit) {
          return hit || fetch(request);
        })
      );
    } else if (url.pathname.indexOf(C.api) === 0) {
      event.respondWith(networkFirst(request));
    }
  });
})();
