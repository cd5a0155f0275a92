// Progressive enhancement only: every action works without this file.
(function () {
  "use strict";
  document.querySelectorAll("[data-copy-target]").forEach(function (button) {
    var field = document.getElementById(button.getAttribute("data-copy-target"));
    var status = document.querySelector("[data-copy-status]");
    if (!field || !navigator.clipboard) {
      return;
    }
    button.hidden = false;
    button.addEventListener("click", function () {
      navigator.clipboard.writeText(field.value).then(
        function () {
          button.textContent = "Copied";
          if (status) { status.textContent = "The secret is on your clipboard."; }
        },
        function () {
          field.select();
          if (status) { status.textContent = "Copying was blocked: the secret is selected, press Ctrl+C (or ⌘C)."; }
        }
      );
    });
  });
  // Selecting the whole secret on focus makes manual copying one keystroke.
  document.querySelectorAll("input.secret").forEach(function (field) {
    field.addEventListener("focus", function () { field.select(); });
  });
  // Header menus are <details>: they work without JavaScript; this adds Escape and click-outside to close.
  var menus = document.querySelectorAll("details.menu");
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") { return; }
    menus.forEach(function (menu) {
      if (menu.open) {
        menu.open = false;
        menu.querySelector("summary").focus();
      }
    });
  });
  document.addEventListener("click", function (event) {
    menus.forEach(function (menu) {
      if (menu.open && !menu.contains(event.target)) { menu.open = false; }
    });
  });
})();
