"use strict";
// Click a column header to sort its table; a second click reverses. Blank cells always sort last.
document.querySelectorAll("table.sortable").forEach(function (table) {
  table.querySelectorAll("thead th").forEach(function (th, column) {
    var button = th.querySelector("button");
    if (!button) { return; }
    button.addEventListener("click", function () {
      var ascending = th.getAttribute("aria-sort") !== "ascending";
      table.querySelectorAll("thead th").forEach(function (other) { other.removeAttribute("aria-sort"); });
      th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
      var numeric = th.dataset.type === "number";
      var body = table.tBodies[0];
      var keyed = Array.prototype.map.call(body.rows, function (row, index) {
        var cell = row.cells[column];
        var raw = cell.hasAttribute("data-value") ? cell.getAttribute("data-value") : cell.textContent.trim();
        var key = raw === "" ? null : (numeric ? parseFloat(raw) : raw.toLowerCase());
        if (numeric && key !== null && isNaN(key)) { key = null; }
        return { row: row, key: key, index: index };
      });
      keyed.sort(function (a, b) {
        if (a.key === null || b.key === null) {
          return a.key === b.key ? a.index - b.index : (a.key === null ? 1 : -1);
        }
        var order = numeric ? a.key - b.key : a.key.localeCompare(b.key);
        return (ascending ? order : -order) || a.index - b.index;
      });
      keyed.forEach(function (item) { body.appendChild(item.row); });
    });
  });
});

// Filter box: a row stays visible when its text contains every word typed (case-insensitive), in
// the summary and in every section's table. Nothing is sent anywhere: the page has no network access.
(function () {
  var input = document.getElementById("filter");
  var count = document.getElementById("filter-count");
  if (!input) { return; }
  var rows = Array.prototype.slice.call(document.querySelectorAll("table.sortable tbody tr"));
  function apply() {
    var words = input.value.toLowerCase().split(/\s+/).filter(function (w) { return w !== ""; });
    var shown = 0;
    rows.forEach(function (row) {
      var text = row.textContent.toLowerCase();
      var keep = words.every(function (w) { return text.indexOf(w) !== -1; });
      row.hidden = !keep;
      if (keep) { shown += 1; }
    });
    count.textContent = words.length ? shown + " of " + rows.length + " rows match" : "";
  }
  input.addEventListener("input", apply);
  apply();
})();
