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

// One clock on every page: times are the viewer's own time zone (named by zoneLabel() wherever
// times are shown), each with its UTC time on hover (utcTitle) — the chart's axis included.
export function timeOfDay(ms) {
  return new Date(ms).toLocaleTimeString([], { hour12: false });
}

export function dateTime(ms) {
  return new Date(ms).toLocaleString([], { hour12: false });
}

export function utcTitle(ms) {
  return `${new Date(ms).toISOString().replace("T", " ").slice(0, 19)} UTC`;
}

// The viewer's offset from UTC, as the label of a time column: "UTC+01:00", "UTC−05:00", "UTC".
export function zoneLabel(ms = Date.now()) {
  const minutes = -new Date(ms).getTimezoneOffset();
  if (minutes === 0) return "UTC";
  const sign = minutes > 0 ? "+" : "−";
  const abs = Math.abs(minutes);
  const hh = String(Math.floor(abs / 60)).padStart(2, "0");
  const mm = String(abs % 60).padStart(2, "0");
  return `UTC${sign}${hh}:${mm}`;
}

// A table cell with a time of day in the viewer's zone and the UTC time on hover.
export function timeCell(ms, className) {
  const node = cell(timeOfDay(ms), className);
  node.title = utcTitle(ms);
  return node;
}

// Fills every [data-zone] with the viewer's zone (the heading of a time column, a chart's note).
export function labelZones(root = document) {
  for (const node of $$("[data-zone]", root)) node.textContent = zoneLabel();
}

// Decimal strings from the server are shown with their digits as they are (the server writes
// each to its precision: docs/protocol.md), only grouped in thousands; numbers computed here
// (live marks and sums) are written to `decimals` places: the currency's for money, the tick's
// for a price.
const CURRENCY_DECIMALS = 2; // settings.FLASHBOOK_CURRENCY_DECIMALS' default

export function money(value) {
  return grouped(toPlaces(value, CURRENCY_DECIMALS), CURRENCY_DECIMALS);
}

// A price to the tick's decimals ("99.7" -> "99.70" when the tick is 0.01), grouped in
// thousands. Without `decimals`, as the server wrote it.
export function price(value, decimals) {
  return grouped(decimals === undefined ? value : toPlaces(value, decimals), decimals);
}

// A decimal string or number written with exactly `decimals` places, rounded half away from zero
// on the string's digits (no float noise for long decimals such as "-297.89000162").
export function toPlaces(value, decimals) {
  if (value === null || value === undefined || value === "") return value;
  let text = typeof value === "number" ? value.toFixed(Math.min(20, decimals + 2)) : String(value).trim();
  if (/e/i.test(text) && Number.isFinite(Number(text))) text = Number(text).toFixed(Math.min(20, decimals + 2));
  const match = /^(-?)(\d+)(?:\.(\d*))?$/.exec(text);
  if (!match) return String(value);
  const [, sign, whole, fraction = ""] = match;
  if (fraction.length <= decimals) {
    const padded = fraction.padEnd(decimals, "0");
    return decimals ? `${sign}${whole}.${padded}` : `${sign}${whole}`;
  }
  const digits = whole + fraction.slice(0, decimals);
  let scaled = BigInt(digits);
  if (Number(fraction[decimals]) >= 5) scaled += 1n;
  let out = scaled.toString().padStart(decimals + 1, "0");
  if (decimals) out = `${out.slice(0, -decimals)}.${out.slice(-decimals)}`;
  return /^[0.]+$/.test(out) ? out : `${sign}${out}`;
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

// Server-rendered times (<time datetime="…" data-time>, written in UTC for a page without
// scripts) shown as the viewer's date and time, with the UTC time on hover; and the zone named in
// every [data-zone].
export function localizeTimes(root = document) {
  for (const node of $$("time[data-time]", root)) {
    const ms = Date.parse(node.getAttribute("datetime"));
    if (Number.isNaN(ms)) continue;
    node.textContent = dateTime(ms);
    node.title = utcTitle(ms);
  }
  labelZones(root);
}
