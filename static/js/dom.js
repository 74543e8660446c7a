// Small DOM helpers. Data always goes in as text (textContent), never as HTML.

export const $ = (selector, root = document) => root.querySelector(selector);
export const $$ = (selector, root = document) => [...root.querySelectorAll(selector)];

export function el(tag, { className, text, attrs } = {}, children = []) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = String(text);
  for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, value);
  for (const child of children) node.append(child);
  return node;
}

export function setText(node, value, fallback = "—") {
  if (node) node.textContent = value === null || value === undefined || value === "" ? fallback : String(value);
}

// Replaces a table body's rows; toggles the empty-state paragraph.
export function fillRows(tbody, items, renderRow, emptyNode) {
  tbody.replaceChildren(...items.map(renderRow));
  if (emptyNode) emptyNode.hidden = items.length > 0;
}

export function cell(text, className) {
  return el("td", { className, text: text ?? "—" });
}

export function pageConfig() {
  return JSON.parse(document.getElementById("page-config").textContent);
}

export function timeOfDay(ms) {
  return new Date(ms).toLocaleTimeString([], { hour12: false });
}

// Decimal strings from the server are shown as they are; numbers only for charts and sums.
export function money(value) {
  if (value === null || value === undefined) return "—";
  const number = Number(value);
  return Number.isFinite(number)
    ? number.toLocaleString(undefined, { minimumFractionDigits: 2, maximumFractionDigits: 2 })
    : String(value);
}

export function signClass(value) {
  const number = Number(value);
  return number > 0 ? "up" : number < 0 ? "down" : "";
}

// The page's symbol switcher navigates to the same page for another symbol.
export function bindSymbolSwitcher() {
  const select = $("[data-symbol-select]");
  if (!select) return;
  select.addEventListener("change", () => {
    const url = new URL(window.location.href);
    url.searchParams.set("symbol", select.value);
    window.location.assign(url.toString());
  });
}
