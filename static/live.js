// The logs page in live mode (/logs?...&live=1): new events of the selection, from the tail
// (/api/v1/tail, Server-Sent Events), go on top of the table without a reload, in the markup of the
// server's rows (templates/logs.html). Event text only ever goes in as textContent.
(function () {
  "use strict";
  var table = document.querySelector("table.events[data-tail]");
  if (!table || !window.EventSource) return;
  var body = table.tBodies[0];
  var status = document.querySelector(".live-status");
  // Rows kept in live mode: older ones leave the bottom, so a long-open page stays light.
  var MAX_ROWS = 500;
  // As the server shortens a row's message (ROW_MESSAGE_CHARS in src/web/pages/logs.rs).
  var MESSAGE_CHARS = 240;
  var rowHref = table.getAttribute("data-row-href");
  var format = null;
  try {
    format = new Intl.DateTimeFormat("en-CA", {
      timeZone: table.getAttribute("data-zone") || "UTC",
      year: "numeric", month: "2-digit", day: "2-digit",
      hour: "2-digit", minute: "2-digit", second: "2-digit",
      fractionalSecondDigits: 3, hourCycle: "h23"
    });
  } catch (e) {
    format = null;
  }

  function say(text) {
    if (status) status.textContent = text;
  }

  // `2026-11-24 15:04:05.123` on the page's clock, as the server writes it.
  function time(iso) {
    var date = new Date(iso);
    if (!format || isNaN(date.getTime())) return iso;
    var p = {};
    format.formatToParts(date).forEach(function (part) { p[part.type] = part.value; });
    return p.year + "-" + p.month + "-" + p.day + " " + p.hour + ":" + p.minute + ":" + p.second + "." +
      p.fractionalSecond;
  }

  // The first line, cut to MESSAGE_CHARS characters; " …" when more lines follow.
  function shorten(text) {
    var line = text.split("\n")[0].replace(/\r$/, "");
    var chars = Array.from(line);
    if (chars.length > MESSAGE_CHARS) return chars.slice(0, MESSAGE_CHARS).join("") + "…";
    return line.length < text.length ? line + " …" : line;
  }

  function cell(className, text, href) {
    var td = document.createElement("td");
    td.className = className;
    if (href) {
      var a = document.createElement("a");
      a.href = href;
      a.textContent = text;
      td.appendChild(a);
    } else {
      td.textContent = text;
    }
    return td;
  }

  // The query's words, marked in a new row's message as the server marks its rows
  // (src/web/pages/highlight.rs): case-insensitive, overlapping matches merged.
  var marks = [];
  try {
    marks = JSON.parse(table.getAttribute("data-marks") || "[]").map(function (w) { return w.toLowerCase(); });
  } catch (e) {
    marks = [];
  }

  function marked(link, text) {
    var lower = text.toLowerCase();
    // Lower-casing may change a text's length; then the message goes in unmarked.
    if (!marks.length || lower.length !== text.length) { link.textContent = text; return; }
    var on = new Array(text.length).fill(false);
    marks.forEach(function (word) {
      if (!word) return;
      for (var at = lower.indexOf(word); at >= 0; at = lower.indexOf(word, at + 1)) {
        for (var i = at; i < at + word.length; i++) on[i] = true;
      }
    });
    var start = 0;
    for (var i = 1; i <= text.length; i++) {
      if (i < text.length && on[i] === on[start]) continue;
      var piece = text.slice(start, i);
      if (on[start]) {
        var mark = document.createElement("mark");
        mark.textContent = piece;
        link.appendChild(mark);
      } else {
        link.appendChild(document.createTextNode(piece));
      }
      start = i;
    }
  }

  function row(event) {
    var level = /^[a-z]+$/.test(event.level) ? event.level : "info";
    var href = rowHref + "&event=" + encodeURIComponent(event.id);
    var tr = document.createElement("tr");
    tr.className = "event level-" + level;
    // The keyboard's `c` (static/keys.js) reads the event's id here, as on the server's rows.
    tr.setAttribute("data-event", String(event.id));
    tr.appendChild(cell("time", time(event.timestamp), href));
    var badge = document.createElement("span");
    badge.className = "badge level-" + level;
    badge.textContent = level;
    var levelCell = cell("level", "");
    levelCell.appendChild(badge);
    tr.appendChild(levelCell);
    tr.appendChild(cell("type", event.type || ""));
    var message = cell("message", "", href);
    marked(message.firstChild, shorten(String(event.message || "")));
    tr.appendChild(message);
    var httpStatus = event.http && event.http.status != null ? String(event.http.status) : "";
    tr.appendChild(cell("status", httpStatus));
    var url = cell("url", event.url || "");
    url.title = event.url || "";
    tr.appendChild(url);
    return tr;
  }

  var source = new EventSource(table.getAttribute("data-tail"));
  source.onopen = function () { say("Live: new events appear on top as they arrive."); };
  source.onerror = function () { say("Live: connection lost, reconnecting…"); };
  source.onmessage = function (message) {
    var event;
    try {
      event = JSON.parse(message.data);
    } catch (e) {
      return;
    }
    var empty = body.querySelector("tr.empty");
    if (empty) empty.remove();
    body.insertBefore(row(event), body.firstChild);
    while (body.rows.length > MAX_ROWS) body.deleteRow(-1);
  };
  source.addEventListener("skipped", function (message) {
    var skipped = 0;
    try {
      skipped = JSON.parse(message.data).skipped;
    } catch (e) {
      skipped = 0;
    }
    say("Live: " + skipped + " events came too fast to show; reload for all of them.");
  });
})();
