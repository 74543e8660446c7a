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

// Decimal strings from the server are shown with their digits as they are (the server writes
// each to its precision: docs/protocol.md), only grouped in thousands; numbers computed here
// (live marks and sums) are written to `decimals` places: the currency's for money, the tick's
// for a price.
const CURRENCY_DECIMALS = 2; // settings.FLASHBOOK_CURRENCY_DECIMALS' default

export function money(value) {
  return grouped(value, CURRENCY_DECIMALS);
}

export function price(value, decimals) {
  return grouped(value, decimals);
}

// How many decimals a step from the server has: "0.01" -> 2, "25" -> 0, "0.5" -> 1.
export function places(text) {
  const dot = String(text).indexOf(".");
  return dot < 0 ? 0 : String(text).length - dot - 1;
}

function grouped(value, decimals) {
  if (value === null || value === undefined) return "—";
  let text = typeof value === "string" ? value : Number(value).toFixed(decimals);
  if (!/^-?\d+(\.\d+)?$/.test(text)) return String(value);
  if (Number(text) === 0) text = text.replace("-", ""); // no "-0.00" from a float's noise
  const [whole, fraction] = text.split(".");
  const digits = whole.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  return fraction === undefined ? digits : `${digits}.${fraction}`;
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
