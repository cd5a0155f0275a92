// Row editors of flags, segments and the evaluate tools: progressive enhancement only.
// Without this file the forms still work: they render blank rows to fill and empty rows are dropped.
(function () {
  "use strict";

  function renumber(editor) {
    var name = editor.getAttribute("data-rows");
    editor.querySelectorAll("tbody tr").forEach(function (row, index) {
      row.setAttribute("data-index", index);
      var number = row.querySelector(".row-number");
      if (number) { number.textContent = index + 1; }
      row.querySelectorAll("[data-col]").forEach(function (control) {
        var field = name + "-" + index + "-" + control.getAttribute("data-col");
        control.name = field;
        control.id = "id_" + field;
        var label = control.getAttribute("aria-label") || "";
        control.setAttribute("aria-label", label.replace(/^Row \d+/, "Row " + (index + 1)));
      });
    });
    total(editor);
  }

  function total(editor) {
    var box = editor.querySelector("[data-total-of]");
    if (!box) { return; }
    var column = box.getAttribute("data-total-of");
    var sum = 0;
    editor.querySelectorAll("[data-col='" + column + "']").forEach(function (input) {
      var value = parseInt(input.value, 10);
      if (!isNaN(value)) { sum += value; }
    });
    box.hidden = false;
    box.querySelector("output").textContent = sum;
    var ok = sum === 0 || sum === 100;
    box.classList.toggle("total-bad", !ok);
    box.lastChild.textContent = ok ? " %" : " % (must be 100 for a split, or 0)";
  }

  function button(text, label, onClick) {
    var b = document.createElement("button");
    b.type = "button";
    b.className = "row-editor-button";
    b.textContent = text;
    b.setAttribute("aria-label", label);
    b.addEventListener("click", onClick);
    return b;
  }

  function addControls(editor, row) {
    var cell = document.createElement("td");
    cell.className = "row-editor-tools";
    var ordered = editor.getAttribute("data-rows") === "rules";
    if (ordered) {
      cell.appendChild(button("↑", "Move row up", function () {
        var previous = row.previousElementSibling;
        if (previous) { row.parentNode.insertBefore(row, previous); renumber(editor); }
      }));
      cell.appendChild(button("↓", "Move row down", function () {
        var next = row.nextElementSibling;
        if (next) { row.parentNode.insertBefore(next, row); renumber(editor); }
      }));
    }
    cell.appendChild(button("Remove", "Remove row", function () {
      var body = row.parentNode;
      if (body.children.length > 1) { row.remove(); } else { clear(row); }
      renumber(editor);
    }));
    row.appendChild(cell);
  }

  function clear(row) {
    row.classList.remove("row-error");
    row.querySelectorAll("input, textarea").forEach(function (input) { input.value = ""; });
    row.querySelectorAll("select").forEach(function (select) { select.selectedIndex = 0; });
  }

  function enhance(editor) {
    var headRow = editor.querySelector("thead tr");
    var tools = document.createElement("th");
    tools.setAttribute("aria-label", "Row tools");
    headRow.appendChild(tools);
    editor.querySelectorAll("tbody tr").forEach(function (row) { addControls(editor, row); });
    var add = button("Add row", "Add a row", function () {
      var rows = editor.querySelectorAll("tbody tr");
      var last = rows[rows.length - 1];
      var copy = last.cloneNode(true);
      copy.querySelector(".row-editor-tools").remove();
      clear(copy);
      last.parentNode.appendChild(copy);
      addControls(editor, copy);
      renumber(editor);
      var first = copy.querySelector("[data-col]");
      if (first) { first.focus(); }
    });
    add.classList.add("row-editor-add");
    editor.querySelector("table").insertAdjacentElement("afterend", add);
    editor.addEventListener("input", function () { total(editor); });
    total(editor);
  }

  // The flag add form: show the value fields the chosen kind uses (all stay in the form and are checked
  // on the server; a boolean flag has no value or variants, only a JSON flag has a schema).
  function kindFields() {
    var kind = document.querySelector("select[name=kind]");
    if (!kind) { return; }
    function apply() {
      var typed = kind.value !== "boolean" && kind.value !== "";
      [".field-default_value", ".field-variants"].forEach(function (selector) {
        var row = document.querySelector(selector);
        // A field with an error stays in view whatever the kind, so the error can be read and fixed.
        if (row) { row.hidden = !typed && !row.classList.contains("errors"); }
      });
      var schema = document.querySelector(".field-schema");
      if (schema) { schema.hidden = kind.value !== "json" && !schema.classList.contains("errors"); }
    }
    kind.addEventListener("change", apply);
    apply();
  }

  // The admin loads form media in <head>: wait for the rows to exist.
  function start() {
    document.querySelectorAll(".row-editor").forEach(enhance);
    kindFields();
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
