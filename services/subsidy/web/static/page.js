// The finance page's only script: sort a table's rows by a clicked heading, and ask before
// approving a payout. The page works without it.
"use strict";

function cellValue(row, index, numeric) {
  const text = row.cells[index] ? row.cells[index].textContent.trim() : "";
  if (!numeric) return text;
  const value = parseFloat(text.replace(/,/g, ""));
  return Number.isNaN(value) ? -Infinity : value;
}

function sortBy(table, th) {
  const index = Array.prototype.indexOf.call(th.parentNode.children, th);
  const numeric = th.classList.contains("num");
  const ascending = th.getAttribute("aria-sort") !== "ascending";
  th.parentNode.querySelectorAll("th").forEach((h) => h.removeAttribute("aria-sort"));
  th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
  const body = table.tBodies[0];
  const rows = Array.from(body.rows).filter((r) => r.cells.length > 1);
  rows.sort((a, b) => {
    const x = cellValue(a, index, numeric);
    const y = cellValue(b, index, numeric);
    const order = numeric ? x - y : String(x).localeCompare(String(y), "zh-CN");
    return ascending ? order : -order;
  });
  rows.forEach((r) => body.appendChild(r));
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("table.sortable").forEach((table) => {
    table.querySelectorAll("thead th").forEach((th) => {
      th.addEventListener("click", () => sortBy(table, th));
    });
  });
  document.querySelectorAll("button[data-confirm]").forEach((button) => {
    button.addEventListener("click", (event) => {
      if (!window.confirm(button.dataset.confirm)) event.preventDefault();
    });
  });
});
