// Auto-refresh of the ops pages' live region (#ops-live, polled by htmx): keep the
// keyboard focus where it was, announce each update politely, and let people pause.
(function () {
  "use strict";
  var FOCUSABLE = "a[href], button, input, select, textarea, summary, [tabindex]";
  var paused = false;
  var saved = null;

  function region() { return document.getElementById("ops-live"); }
  function status() { return document.getElementById("ops-refresh-status"); }

  // Remember what had the focus by what it is (id, link target, name), not by node: the node is replaced.
  function describe(el, root) {
    return {
      id: el.id,
      href: el.getAttribute("href"),
      name: el.getAttribute("name"),
      text: (el.textContent || "").trim(),
      tag: el.tagName,
      index: Array.prototype.indexOf.call(root.querySelectorAll(FOCUSABLE), el),
    };
  }

  function find(memo, root) {
    if (memo.id) { var byId = document.getElementById(memo.id); if (byId && root.contains(byId)) return byId; }
    var candidates = Array.prototype.slice.call(root.querySelectorAll(FOCUSABLE));
    var same = candidates.filter(function (el) {
      return el.tagName === memo.tag && el.getAttribute("href") === memo.href &&
        el.getAttribute("name") === memo.name && (el.textContent || "").trim() === memo.text;
    });
    return same[0] || candidates[Math.min(memo.index, candidates.length - 1)] || null;
  }

  document.addEventListener("htmx:beforeRequest", function (event) {
    if (paused && event.target === region()) event.preventDefault();
  });
  document.addEventListener("htmx:beforeSwap", function (event) {
    var root = region(), el = document.activeElement;
    saved = root && el && el !== document.body && root.contains(el) ? describe(el, root) : null;
  });
  document.addEventListener("htmx:afterSettle", function () {
    var root = region();
    if (!root) return;
    if (saved) {
      var target = find(saved, root);
      if (target) target.focus({ preventScroll: true });
      saved = null;
    }
    var stamp = root.querySelector(".ops-updated time");
    if (status() && stamp) status().textContent = "Updated " + stamp.textContent + " UTC.";
  });

  document.addEventListener("DOMContentLoaded", function () {
    var button = document.getElementById("ops-refresh-pause");
    if (!button) return;
    button.hidden = false;  // without JavaScript there is no polling to pause
    button.addEventListener("click", function () {
      paused = !paused;
      button.setAttribute("aria-pressed", paused ? "true" : "false");
      button.textContent = paused ? "Resume auto-refresh" : "Pause auto-refresh";
      status().textContent = paused ? "Auto-refresh paused." : "Auto-refresh resumed.";
    });
  });
})();
