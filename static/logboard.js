/*! logboard browser client, MIT. Docs: README "For front-end developers". */
(function (G) {
  "use strict";
  if (G.Logboard) return; // loaded twice (script tag and module): keep the first

  var D = G.document, N = G.navigator, C = G.console, F = G.fetch, TE = new TextEncoder();
  var MAX_EVENTS = 50, MAX_BYTES = 16384, KEEPALIVE_BYTES = 60000, EVENT_BYTES = 15000;
  var SENSITIVE = /passw|secret|token|api[-_]?key|auth|credential|session|cookie|csrf/i;
  var EXTENSION = /^[\w-]+-extension:/;
  var IGNORE = [/^(Uncaught )?Script error\.?$/, /ResizeObserver loop/];
  var me = D && D.currentScript, here = /^(.*)\/static\/[^/]*$/.exec(me && me.src || "");

  var cfg, user, started, queue = [], queued = 0, inflight = 0, timer = 0, timerAt = 0;
  var backoff = 0, retryAt = 0, lastSig, minute = 0, perMinute = 0, crumbs = [], budget;
  var seen = new WeakSet();

  function now() { return Date.now(); }
  function size(s) { return TE.encode(s).length; }
  function cut(s, n) { return s.length > n ? s.slice(0, n) + "…" : s; }
  function isObj(x) { return x !== null && (typeof x == "object" || typeof x == "function"); }

  // "https://a/b.js?token=1#x:10:5" -> "https://a/b.js:10:5", in free text and stack traces too.
  function noQuery(s) {
    return s.replace(/(\b[a-z][\w+.-]*:\/\/[^\s?#"'()<>]*)[?#][^\s"'()<>]*?((:\d+){0,2})(?=[\s"'()<>]|$)/gi, "$1$2");
  }

  function str(x) {
    if (typeof x == "string") return x;
    try { return JSON.stringify(x) || String(x); } catch (e) { return String(x); }
  }
  function msg(x) {
    return isObj(x) && x.message ? (x.name ? x.name + ": " : "") + x.message : str(x);
  }

  // A JSON-safe copy: sensitive keys scrubbed, strings cut, depth, width and cycles bounded.
  function clean(v, key, depth, path) {
    if (key && SENSITIVE.test(key)) return "[Filtered]";
    if (v == null || typeof v == "boolean" || typeof v == "number") return v;
    if (typeof v == "string") return cut(v, 1000);
    if (typeof v == "function") return "[function " + v.name + "]";
    if (!isObj(v) || v instanceof Error || v.nodeType) return cut(v.nodeType ? describe(v) : msg(v), 1000);
    if (typeof v.toJSON == "function") return clean(v.toJSON(), "", depth, path);
    if (depth > 5 || --budget < 0) return "[…]";
    if (path.indexOf(v) >= 0) return "[Circular]";
    path = path.concat([v]);
    var out = Array.isArray(v) ? [] : {};
    Object.keys(v).slice(0, 100).forEach(function (k) {
      try { out[k] = clean(v[k], out.push ? "" : k, depth + 1, path); } catch (e) { out[k] = "[?]"; }
    });
    return out;
  }

  function make(level, type, message, ctx, err) {
    var m, e = Object.assign({
      level: level, type: type, timestamp: now(), url: G.location && location.href, user: user, release: cfg && cfg.release
    }, ctx, { message: message || "(empty message)" });
    if (isObj(err) && err.stack) e.stack = String(err.stack);
    if (!e.location && e.stack && (m = /\w[\w+.-]*:\/\/[^\s()]+:\d+:\d+/.exec(e.stack))) e.location = m[0];
    if (cfg && cfg.breadcrumbs && crumbs.length && /error|fatal/.test(e.level)) {
      e.extra = Object.assign({}, e.extra, { breadcrumbs: crumbs.slice() });
    }
    return e;
  }

  function ignored(e) {
    return EXTENSION.test(e.location || "") || IGNORE.concat(cfg.ignoreErrors || []).some(function (r) {
      return r.test ? r.test(e.message) : e.message.indexOf(r) >= 0;
    });
  }

  // Scrubbed, query strings stripped, long fields cut; shrunk until it fits one batch.
  function finish(e) {
    var o = {}, k, v, s;
    budget = 1000;
    for (k in e) {
      v = e[k];
      if (v == null) continue;
      if (typeof v == "string") {
        if (/^(message|url|location|stack)$/.test(k)) v = noQuery(v);
        o[k] = cut(v, k == "stack" ? 8000 : k == "message" ? 2000 : 1000);
      } else o[k] = clean(v, k == "user" || k == "extra" ? "" : k, 0, []);
    }
    while ((s = JSON.stringify(o)) && size(s) > EVENT_BYTES) {
      if (o.extra) o.extra = o.extra._truncated ? undefined : { _truncated: cut(str(o.extra), 1000) };
      else if (o.stack && o.stack.length > 1000) o.stack = cut(o.stack, 1000);
      else o = { message: cut(o.message, 1000), level: o.level, type: o.type, timestamp: o.timestamp, url: o.url };
    }
    return s;
  }

  // The filter chain; returns true when the event was queued.
  function report(e, err) {
    try {
      if (!cfg || !started) return false;
      if (isObj(err)) {
        if (seen.has(err)) return false; // already reported (Vue handler, captureException)
        seen.add(err);
      }
      e.message = String(e.message);
      if (ignored(e)) return false;
      var sig = [e.level, e.type, e.message, e.location, e.stack].join("\n");
      if (sig === lastSig) return false;
      lastSig = sig;
      if (Math.random() >= cfg.sampleRate) return false;
      if (cfg.beforeSend && !(e = cfg.beforeSend(e))) return false;
      var t = now();
      if (t - minute >= 60000) { minute = t; perMinute = 0; }
      if (++perMinute > cfg.maxEventsPerMinute || queue.length >= cfg.maxQueue || queued > 1e6) return false;
      var s = finish(e), n = size(s);
      queue.push([s, n]);
      queued += n;
      schedule(queue.length >= MAX_EVENTS || queued >= MAX_BYTES ? 0
        : /error|fatal/.test(e.level) ? Math.min(1000, cfg.flushInterval) : cfg.flushInterval);
      return true;
    } catch (x) {
      return false;
    }
  }

  // --- transport ---

  function schedule(ms) {
    var at = Math.max(now() + ms, retryAt);
    if (timer && timerAt <= at) return;
    clearTimeout(timer);
    timerAt = at;
    timer = setTimeout(function () { timer = 0; flush(); }, at - now());
  }

  function url() { return cfg.endpoint + "/api/v1/events?key=" + encodeURIComponent(cfg.key); }

  // Takes one batch off the queue: at most 50 events and 16 KiB of body.
  function take() {
    var batch = [], bytes = 40 + size(str(cfg.env || ""));
    while (queue.length && batch.length < MAX_EVENTS && (!batch.length || bytes + queue[0][1] < MAX_BYTES)) {
      bytes += queue[0][1] + 1;
      queued -= queue[0][1];
      batch.push(queue.shift());
    }
    return batch;
  }

  function body(batch) {
    return '{"env":' + JSON.stringify(cfg.env || null) + ',"events":[' + batch.map(function (b) { return b[0]; }).join(",") + "]}";
  }

  function requeue(batch, retryAfter) {
    queue = batch.concat(queue).slice(0, cfg.maxQueue);
    queued = queue.reduce(function (a, b) { return a + b[1]; }, 0);
    var t = now(), wait = retryAfter ? (isFinite(retryAfter) ? retryAfter * 1000 : Date.parse(retryAfter) - t) : NaN;
    if (t >= retryAt) backoff = backoff ? Math.min(backoff * 2, 60000) : 1000;
    retryAt = t + Math.min(wait >= 0 ? Math.max(wait, 1000) : backoff, 3600000);
    schedule(0);
  }

  // POSTs one batch as text/plain (a CORS "simple" request: no preflight); retries what failed.
  function send(batch, beacon) {
    var b = body(batch), n = size(b), keep = inflight + n <= KEEPALIVE_BYTES, p;
    if (beacon && N.sendBeacon) {
      try { if (N.sendBeacon(url(), b)) return Promise.resolve(); } catch (x) { /* fall back */ }
    }
    if (keep) inflight += n;
    try {
      p = F.call(G, url(), { method: "POST", body: b, keepalive: keep, credentials: "omit" });
    } catch (x) {
      p = Promise.reject(x);
    }
    return p.then(function (r) {
      var s = r.status;
      if (s == 408 || s == 429 || s >= 500) requeue(batch, r.headers.get("Retry-After"));
      else if (s < 300) backoff = 0; // 413 and other 4xx: dropped, retrying cannot help
    }, function () {
      requeue(batch); // network error
    }).then(function () {
      if (keep) inflight -= n;
    });
  }

  function flush(beacon) {
    if (!cfg || !F) return Promise.resolve();
    var sent = [];
    while (queue.length && (beacon || now() >= retryAt)) sent.push(send(take(), beacon));
    if (queue.length) schedule(0);
    return Promise.all(sent).then(function () {});
  }

  function leave() { flush(true); }

  // --- capture ---

  function onError(ev) {
    var t = ev.target, err = ev.error, u;
    if (t && t !== G && t.nodeType) { // a failed <img>, <script>, <link>, ... (seen in the capture phase only)
      u = t.currentSrc || t.src || t.href || "";
      report(make("error", "resource", "Failed to load <" + t.nodeName.toLowerCase() + "> " + u, { location: u }));
      return;
    }
    report(make("error", "window.onerror", isObj(err) ? msg(err) : ev.message || str(err),
      ev.filename ? { location: ev.filename + ":" + ev.lineno + ":" + ev.colno } : null, err), err);
  }

  function onRejection(ev) {
    var r = ev.reason, isErr = isObj(r) && r.message;
    report(make("error", "unhandledrejection", isErr ? msg(r) : "Unhandled promise rejection: " + str(r),
      isErr ? null : { extra: { reason: r } }, r), r);
  }

  function bare(u) { return String(u).split(/[?#]/)[0]; }

  function crumb(type, text) {
    crumbs.push({ time: now(), type: type, text: cut(noQuery(String(text)), 300) });
    if (crumbs.length > 100) crumbs.shift();
  }

  function describe(el) {
    var c = typeof el.className == "string" && el.className.trim();
    return (el.nodeName || "?").toLowerCase() + (el.id ? "#" + el.id : "") + (c ? "." + c.split(/\s+/).join(".") : "");
  }

  function watchBreadcrumbs() {
    D && D.addEventListener("click", function (ev) { crumb("click", describe(ev.target || {})); }, true);
    G.addEventListener("popstate", function () { crumb("navigation", location.href); });
    var H = history, push = H.pushState;
    H.pushState = function (s, t, u) { crumb("navigation", bare(u || "")); return push.apply(this, arguments); };
    G.fetch = function (input, init) {
      var what = ((init && init.method) || "GET") + " " + bare(input && input.url || input);
      return F.apply(G, arguments).then(function (r) {
        crumb("fetch", what + " " + r.status);
        return r;
      }, function (x) {
        crumb("fetch", what + " failed");
        throw x;
      });
    };
    var X = XMLHttpRequest.prototype, open = X.open, xsend = X.send;
    X.open = function (m, u) { this._lb = m + " " + bare(u); return open.apply(this, arguments); };
    X.send = function () {
      var x = this;
      x.addEventListener("loadend", function () { crumb("xhr", x._lb + " " + (x.status || "failed")); });
      return xsend.apply(this, arguments);
    };
  }

  function watchConsole() {
    ["error", "warn"].forEach(function (level) {
      var orig = C[level];
      C[level] = function () {
        var args = [].slice.call(arguments), err = args.filter(function (a) { return a instanceof Error; })[0];
        report(make(level, "console", args.map(msg).join(" "), null, err), err);
        return orig.apply(C, args);
      };
    });
  }

  var Logboard = {
    version: "0.1.0",
    init: function (o) {
      cfg = Object.assign({ endpoint: here ? here[1] : "", sampleRate: 1, maxEventsPerMinute: 300, maxQueue: 1000, flushInterval: 3000 }, o);
      cfg.endpoint = String(cfg.endpoint).replace(/\/+$/, "");
      if (o && o.user) user = o.user;
      if (!started) {
        started = 1;
        G.addEventListener("error", onError, true);
        G.addEventListener("unhandledrejection", onRejection);
        D && D.addEventListener("visibilitychange", function () { if (D.visibilityState == "hidden") leave(); });
        G.addEventListener("pagehide", leave);
        if (cfg.breadcrumbs) watchBreadcrumbs();
        if (cfg.console && C) watchConsole();
      }
      return Logboard;
    },
    log: function (level, message, ctx) {
      return report(make(level || "info", "custom", message == null ? "" : str(message), ctx));
    },
    captureException: function (err, ctx) {
      return report(make("error", "custom", msg(err), ctx, err), err);
    },
    setUser: function (u) { user = u || undefined; },
    flush: function () { return flush(); }
  };

  // Vue 3: app.use(LogboardVue[, initOptions]); Vue 2: Vue.use(LogboardVue[, initOptions]).
  var LogboardVue = {
    install: function (app, o) {
      if (o && o.key) Logboard.init(o);
      var config = app.config, earlier = config.errorHandler;
      config.errorHandler = function (err, vm, info) {
        var trace = [], v = vm, name;
        for (; v; v = v.$parent) {
          var opts = v.$options || {};
          name = opts.name || opts.__name || opts._componentTag || (opts.__file || "").replace(/^.*[\\/]|\.vue$/g, "");
          if (name || v.$parent) trace.unshift(name || "Anonymous");
        }
        report(make("error", "vue", msg(err), {
          location: trace.join(" > ") || undefined,
          extra: { component: trace[trace.length - 1], info: info }
        }, err), err);
        if (earlier) return earlier.call(this, err, vm, info);
        C && C.error(err); // a handler replaces Vue's own logging: keep the error visible
      };
    }
  };

  G.Logboard = Logboard;
  G.LogboardVue = LogboardVue;
})(typeof globalThis == "object" ? globalThis : self);
