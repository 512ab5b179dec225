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
