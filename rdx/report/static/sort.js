/* rdx reports: click a column header (th.sortable) to sort its table's rows by the cells' data-value
 * (first click: descending, next: ascending; a missing value sorts as the lowest; the first column sorts
 * as text). Used by the comparison report's scores table and every table of the sweep report. */
(function () {
  "use strict";
  function sortTable(table, th) {
    const column = th.cellIndex;
    const descending = !th.classList.contains("sorted-desc");
    for (const other of table.querySelectorAll("th")) other.classList.remove("sorted-desc", "sorted-asc");
    th.classList.add(descending ? "sorted-desc" : "sorted-asc");
    const body = table.tBodies[0];
    const rows = Array.from(body.rows);
    const value = (row) => {
      const raw = row.cells[column].dataset.value;
      return column === 0 ? raw : raw === "" ? -Infinity : Number(raw);
    };
    rows.sort((a, b) => {
      const x = value(a);
      const y = value(b);
      const order = x < y ? -1 : x > y ? 1 : 0;
      return descending ? -order : order;
    });
    for (const row of rows) body.appendChild(row);
  }
  function sortable(table) {
    if (!table.tHead) return;
    table.tHead.addEventListener("click", (event) => {
      if (event.target.closest("a")) return; // a link in a header (a comparison's report) opens instead
      const th = event.target.closest("th.sortable");
      if (th) sortTable(table, th);
    });
  }
  window.rdxSortable = sortable;
  for (const table of document.querySelectorAll("table.data")) sortable(table);
})();
