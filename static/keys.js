// Keyboard shortcuts of the logs and issues pages. Each key does what a click on the page's own
// links and forms does, so the pages work the same without this script; `?` opens the list
// (the <dialog id="keys-help"> of the page's template).
//   Logs:   /  search · j / k  next / previous row · Enter, o  open · Esc  close · c  context
//   Issues: j / k · Enter  the events · r  resolve · i  ignore
(function () {
  "use strict";
  var page = document.body.classList.contains("page-logs") ? "logs"
    : document.body.classList.contains("page-issues") ? "issues" : null;
  if (!page) return;
  var ROWS = page === "logs" ? "table.events tbody tr.event" : "table.issues-table tbody tr.issue";
  var help = document.getElementById("keys-help");

  // The button that opens the list stays hidden without this script, which alone can open it.
  var opener = document.querySelector("button.keys-open");
  if (opener && help) {
    opener.hidden = false;
    opener.addEventListener("click", function () { help.showModal(); });
  }

  function rows() { return Array.prototype.slice.call(document.querySelectorAll(ROWS)); }
  function selected() { return document.querySelector(ROWS + "[aria-selected=true]"); }

  function select(row) {
    var old = selected();
    if (old) old.removeAttribute("aria-selected");
    row.setAttribute("aria-selected", "true");
    row.scrollIntoView({ block: "nearest" });
  }

  // With nothing selected, j (or k) selects the first row.
  function move(step) {
    var all = rows();
    if (!all.length) return;
    var at = all.indexOf(selected());
    select(all[at < 0 ? 0 : Math.min(all.length - 1, Math.max(0, at + step))]);
  }

  // The open event's row (the logs page's detail) starts selected, so that j goes on from it.
  var openRow = page === "logs" && document.querySelector(ROWS + ".selected");
  if (openRow) openRow.setAttribute("aria-selected", "true");

  function follow(link) { if (link && link.href) window.location.href = link.href; }

  function open() {
    var row = selected();
    if (row) follow(row.querySelector(page === "logs" ? "td.message a" : "td.title a"));
  }

  // The events around the selected row's event (or the open detail's): the same project,
  // environment and group.
  function context() {
    var row = selected();
    var detail = document.querySelector("aside.detail[data-event]");
    var id = row ? row.getAttribute("data-event") : detail && detail.getAttribute("data-event");
    var form = document.querySelector("form.filters");
    if (!id || !form) return;
    var params = new URLSearchParams();
    ["project", "env", "group"].forEach(function (name) {
      var input = form.querySelector("input[type=hidden][name=" + name + "]");
      if (input && input.value) params.set(name, input.value);
    });
    params.set("around", id);
    window.location.href = "/logs?" + params.toString();
  }

  // The row's own resolve / ignore form (templates/issues.html), as its button would send it.
  function setStatus(status) {
    var row = selected();
    var input = row && row.querySelector("td.actions input[name=status][value=" + status + "]");
    if (input) input.form.submit();
  }

  function typing(target) {
    return target && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName));
  }

  document.addEventListener("keydown", function (event) {
    if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey) return;
    if (typing(event.target)) return;
    if (help && help.open) {
      if (event.key === "Escape") { event.preventDefault(); help.close(); }
      return;
    }
    var key = event.key;
    var done = true;
    if (key === "j") move(1);
    else if (key === "k") move(-1);
    else if (key === "Enter" && selected() && !event.target.closest("a, button")) open();
    else if (key === "o" && selected()) open();
    else if (key === "?" && help) help.showModal();
    else if (page === "logs" && key === "/") { var q = document.querySelector("form.filters input[name=q]"); if (q) q.focus(); }
    else if (page === "logs" && key === "Escape") follow(document.querySelector("aside.detail a.close"));
    else if (page === "logs" && key === "c") context();
    else if (page === "issues" && key === "r") setStatus("resolved");
    else if (page === "issues" && key === "i") setStatus("ignored");
    else done = false;
    if (done) event.preventDefault();
  });
})();
