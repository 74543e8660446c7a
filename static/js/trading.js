// The trading page: the order ticket (with the order's value, fee and reservation as it is typed,
// a compact book whose prices fill it, a confirmation when the price is far from the market), the
// result line that follows the last order placed, open orders (cancel, replace), fills and the
// account — kept live by the user's executions over /ws/account/ and the book over
// /ws/market/{SYM}/.

import { api } from "./api.js";
import {
  $,
  bindSymbolSwitcher,
  cell,
  el,
  fillRows,
  labelZones,
  money,
  pageConfig,
  places,
  price,
  setText,
  signClass,
  timeCell,
  toPlaces,
} from "./dom.js";
import { MarketFeed, mid, renderBbo } from "./market.js";
import { ConnectionIndicator, LiveSocket } from "./socket.js";

const config = pageConfig();
const symbol = config.symbol;
const instrument = config.instruments.find((i) => i.symbol === symbol);
const tickPlaces = instrument ? places(instrument.tick_size) : 2; // prices are shown to the tick
const indicator = new ConnectionIndicator($("[data-connection]"));
const bar = $(".market-bar");

const OPEN = ["PENDING", "NEW", "PARTIALLY_FILLED"];
const FAR_FROM_MARKET = 0.05; // a limit price more than 5 % from the mid (or last) asks first
const BOOK_LEVELS = 8; // a side, in the compact book
const EXPIRY_REASONS = new Set(["REMAINDER", "FOK_UNFILLABLE", "PRICE_BAND"]);

let orders = []; // open orders, newest first, as the API describes them
let fills = [];
let account = null;
let markOfSymbol = null;
let book = { bids: [], asks: [] };
let lastPrice = null;

// A price of any instrument, to its tick ("99.7" -> "99.70"); "—" for none.
function tickPlacesOf(sym) {
  const found = config.instruments.find((i) => i.symbol === sym);
  return found ? places(found.tick_size) : tickPlaces;
}
function priceOf(value, sym = symbol) {
  return value === null || value === undefined || value === "" ? "—" : price(value, tickPlacesOf(sym));
}

// Whether a number (a float) has no more than `decimals` places.
function onGrid(value, decimals) {
  const scaled = value * 10 ** decimals;
  return Math.abs(scaled - Math.round(scaled)) < 1e-6;
}

// --- the account --------------------------------------------------------------------------------

function renderAccount() {
  if (!account) return;
  const positions = account.positions.filter((p) => Number(p.quantity) !== 0);
  // The symbol on screen is marked live at the book's mid; the others as the API last said.
  let equity = Number(account.cash);
  let unrealized = 0;
  for (const p of positions) {
    const mark = p.symbol === symbol && markOfSymbol !== null ? markOfSymbol : Number(p.mark_price);
    const decimals = tickPlacesOf(p.symbol);
    // To the tick (a mid half a tick off the grid shows its extra digit).
    p.live_mark = price(mark, onGrid(mark, decimals) ? decimals : decimals + 1);
    // From the exact cost basis (mark × quantity − cost basis), as the server computes it; shown
    // to the cent by money().
    p.live_unrealized = mark * Number(p.quantity) - Number(p.cost_basis);
    equity += Number(p.quantity) * mark;
    unrealized += p.live_unrealized;
  }
  setText($('[data-account="cash"]'), money(account.cash));
  setText($('[data-account="equity"]'), money(equity));
  const realized = $('[data-account="realized_pnl"]');
  setText(realized, money(account.realized_pnl));
  realized.className = signClass(account.realized_pnl);
  const unreal = $('[data-account="unrealized_pnl"]');
  setText(unreal, money(unrealized));
  unreal.className = signClass(unrealized);
  setText($('[data-account="fees_paid"]'), money(account.fees_paid));
  fillRows(
    $("[data-positions]"),
    positions,
    (p) =>
      el("tr", {}, [
        labelled("Symbol", p.symbol),
        labelled("Position", p.quantity, "num"),
        labelled("Avg price", priceOf(p.average_price, p.symbol), "num"),
        labelled("Mark", p.live_mark, "num"),
        labelled("Unrealized", money(p.live_unrealized), `num ${signClass(p.live_unrealized)}`),
      ]),
    $("[data-positions-empty]"),
  );
}

async function loadAccount() {
  const answer = await api("GET", "account/");
  if (answer.ok) {
    account = answer.data;
    renderAccount();
  }
}

// --- orders and fills ---------------------------------------------------------------------------

function statusWords(status) {
  return { CANCELED: "cancelled", PARTIALLY_FILLED: "partially filled" }[status] ?? status.toLowerCase();
}

// A cell with its column's name, which a phone shows beside the value (cards, not a wide table).
function labelled(label, text, className) {
  const node = cell(text, className);
  node.dataset.label = label;
  return node;
}

// An order's place in its price level's queue (the engine's reading, a few ms old): "1st in
// line" or "3rd · 8 ahead", the level's size on hover; "—" off the published depth.
function queueCell(order) {
  const q = order.queue_position;
  if (!q) return labelled("Queue", "—", "num queue");
  const place = q.orders_ahead + 1;
  const suffix = place % 10 === 1 && place % 100 !== 11 ? "st" : place % 10 === 2 && place % 100 !== 12 ? "nd" : place % 10 === 3 && place % 100 !== 13 ? "rd" : "th";
  const text = q.orders_ahead === 0 ? "1st in line" : `${place}${suffix} · ${q.quantity_ahead} ahead`;
  const node = labelled("Queue", text, "num queue");
  node.title = `${q.level_orders} orders for ${q.level_quantity} at this price`;
  return node;
}

function renderOrders() {
  fillRows(
    $("[data-orders]"),
    orders,
    (o) => {
      const cancel = el("button", {
        className: "button button-quiet button-small",
        text: "Cancel",
        attrs: { type: "button", "data-cancel": o.id, "aria-label": `Cancel order ${o.id}` },
      });
      cancel.addEventListener("click", () => cancelOrder(o, cancel));
      const replace = el("button", {
        className: "button button-quiet button-small",
        text: "Replace",
        attrs: { type: "button", "aria-label": `Replace order ${o.id}` },
      });
      replace.addEventListener("click", () => openReplace(o));
      return el("tr", { attrs: { "data-order-id": o.id } }, [
        labelled("Symbol", o.symbol, "order-symbol"),
        labelled("Side", o.side, `order-side ${o.side === "buy" ? "up" : "down"}`),
        labelled("Price", o.price === null ? "market" : priceOf(o.price, o.symbol), "num"),
        labelled("Quantity", o.quantity, "num"),
        labelled("Filled", o.filled_quantity, "num"),
        queueCell(o),
        labelled("Status", statusWords(o.status), "status"),
        el("td", { className: "actions" }, o.type === "limit" ? [replace, cancel] : [cancel]),
      ]);
    },
    $("[data-orders-empty]"),
  );
}

function renderFills() {
  fillRows(
    $("[data-fills]"),
    fills.slice(0, 50),
    (f) => {
      const time = timeCell(Date.parse(f.executed_at));
      time.dataset.label = "Time";
      return el("tr", {}, [
        time,
        labelled("Symbol", f.symbol),
        labelled("Side", f.side, f.side === "buy" ? "up" : "down"),
        labelled("Price", priceOf(f.price, f.symbol), "num"),
        labelled("Quantity", f.quantity, "num"),
        labelled("Role", f.role),
        // A fill from the live feed has no fee yet: the recorder charges it (the next refresh).
        labelled("Fee", f.fee === undefined ? "…" : money(f.fee), "num"),
      ]);
    },
    $("[data-fills-empty]"),
  );
}

async function loadOrders() {
  const answer = await api("GET", "orders/?open=true&limit=200");
  if (answer.ok) {
    orders = answer.data.results;
    renderOrders();
  }
}

let fillsRetries = 0;
async function loadFills() {
  const answer = await api("GET", "account/fills/?limit=50");
  if (answer.ok) {
    // Fills the live feed brought that the recorder has not written yet stay (a trade is
    // known by its symbol and sequence number), so a fill never blinks out of the table.
    const recorded = new Set(answer.data.results.map((f) => `${f.symbol}:${f.trade_seq}:${f.role}`));
    const unrecorded = fills.filter((f) => f.live && !recorded.has(`${f.symbol}:${f.trade_seq}:${f.role}`));
    fills = [...unrecorded, ...answer.data.results];
    renderFills();
    // Ask again, once a second for half a minute at most, until the recorder has them.
    fillsRetries = unrecorded.length ? fillsRetries + 1 : 0;
    if (unrecorded.length && fillsRetries <= 30) setTimeout(loadFills, 1000);
  }
}

// The recorder writes the database a moment after the engine speaks: read again shortly after
// an execution, and once more a little later.
let refreshTimer = null;
function refreshSoon() {
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(() => {
    loadOrders();
    loadFills();
    loadAccount();
    refreshTracked();
    setTimeout(() => {
      loadOrders();
      loadAccount();
      refreshTracked();
    }, 1200);
  }, 250);
}

// Executions patch the open orders and the result line at once (the refresh above confirms them).
function applyExecutions(frame) {
  for (const event of frame.events) {
    // An order's id is its exchange id, known from the moment it is placed.
    const order = orders.find(
      (o) => o.symbol === frame.symbol && o.exchange_order_id === event.order_id,
    );
    if (event.kind === "trade") {
      fills.unshift({
        live: true, // until the recorder's row replaces it (loadFills)
        trade_seq: event.seq,
        executed_at: new Date().toISOString(),
        symbol: frame.symbol,
        side: event.side,
        price: event.price,
        quantity: event.qty,
        role: event.role,
      });
    }
    trackEvent(frame.symbol, event);
    if (!order) continue;
    if (event.kind === "accepted") {
      order.exchange_order_id = event.order_id;
      order.status = "NEW";
    } else if (event.kind === "trade") {
      order.filled_quantity = String(Number(order.filled_quantity) + Number(event.qty));
      order.status = Number(event.remaining) > 0 ? "PARTIALLY_FILLED" : "FILLED";
    } else if (event.kind === "replaced") {
      order.price = event.price;
      order.quantity = String(Number(order.filled_quantity) + Number(event.qty));
    } else if (event.kind === "cancelled" || (event.kind === "rejected" && event.command === "new")) {
      order.status = event.kind === "cancelled" ? "CANCELED" : "REJECTED";
    }
  }
  orders = orders.filter((o) => OPEN.includes(o.status));
  renderOrders();
  renderFills();
  refreshSoon();
}

async function cancelOrder(order, button) {
  button.disabled = true;
  const answer = await api("POST", `orders/${order.id}/cancel`);
  if (!answer.ok) {
    button.disabled = false;
    showTicketError(answer.error);
    return;
  }
  mergeTracked(answer.data);
  refreshSoon();
}

// --- the result line: the last order placed here, followed until it ends --------------------------

let tracked = null; // {id, exchange_order_id, symbol, side, type, price, quantity, filled_quantity, average_fill_price, status, reject_reason, reject_reason_text}

function renderResult() {
  const line = $("[data-ticket-result]");
  if (!tracked) {
    line.textContent = "";
    return;
  }
  const o = tracked;
  const at = o.price === null || o.price === undefined ? "at market" : `at ${priceOf(o.price, o.symbol)}`;
  let text = `Order ${o.id}: ${o.side} ${o.quantity} ${o.symbol} ${at} — ${statusWords(o.status)}`;
  const filled = Number(o.filled_quantity || 0);
  if (filled > 0 && o.status !== "FILLED") text += `, ${o.filled_quantity} filled`;
  if (filled > 0 && o.average_fill_price) text += ` at ${priceOf(o.average_fill_price, o.symbol)} average`;
  if (o.reject_reason_text && ["REJECTED", "EXPIRED"].includes(o.status)) text += `: ${o.reject_reason_text}`;
  else text += ".";
  line.textContent = text;
  line.dataset.status = o.status.toLowerCase();
  line.classList.toggle("result-bad", o.status === "REJECTED");
  line.classList.toggle("result-good", o.status === "FILLED");
}

// An answer of the server about the tracked order (the POST, a cancel, a GET): it wins, except that
// a recorded row the recorder has not caught up on yet never takes back what the live events said
// (an order seen cancelled or filled does not become "new" again; a fill is not forgotten).
function mergeTracked(o) {
  if (!o || (tracked && tracked.id !== o.id)) return;
  if (!tracked) {
    tracked = { ...o };
  } else if (OPEN.includes(tracked.status) || !OPEN.includes(o.status)) {
    // (An open answer about an order the live events ended is behind them: not taken.)
    const liveFilled = Number(tracked.filled_quantity || 0) > Number(o.filled_quantity || 0);
    const keep = { filled_quantity: tracked.filled_quantity, average_fill_price: tracked.average_fill_price };
    Object.assign(tracked, o);
    if (liveFilled) Object.assign(tracked, keep);
  }
  renderResult();
}

// One of the account's executions, if it concerns the tracked order. Idempotent: a fill is counted
// from its `remaining` (the same event twice, or one the answer had already, changes nothing).
function trackEvent(sym, event) {
  if (!tracked || tracked.symbol !== sym || tracked.exchange_order_id !== event.order_id) return;
  if (event.kind === "trade") {
    const quantity = Number(tracked.quantity);
    const nowFilled = quantity - Number(event.remaining);
    const before = Number(tracked.filled_quantity || 0);
    if (nowFilled > before) {
      const notional = Number(tracked.average_fill_price || 0) * before + Number(event.price) * (nowFilled - before);
      tracked.filled_quantity = String(nowFilled);
      tracked.average_fill_price = String(notional / nowFilled);
    }
    tracked.status = Number(event.remaining) > 0 ? "PARTIALLY_FILLED" : "FILLED";
  } else if (event.kind === "accepted" && tracked.status === "PENDING") {
    tracked.status = "NEW";
  } else if (event.kind === "cancelled") {
    tracked.status = EXPIRY_REASONS.has(event.reason) ? "EXPIRED" : "CANCELED";
  } else if (event.kind === "rejected" && event.command === "new") {
    tracked.status = "REJECTED";
  } else if (event.kind === "replaced") {
    tracked.price = event.price;
    tracked.quantity = String(Number(tracked.filled_quantity || 0) + Number(event.qty));
  }
  renderResult();
}

// The order as recorded (its average fill price, the reason in plain words), until it has ended
// in the database too.
async function refreshTracked() {
  if (!tracked || tracked.recordedEnd) return;
  const id = tracked.id;
  const answer = await api("GET", `orders/${id}/`);
  if (!answer.ok || !tracked || tracked.id !== id) return;
  if (!OPEN.includes(answer.data.status)) tracked.recordedEnd = true;
  mergeTracked(answer.data);
}

// --- replace -------------------------------------------------------------------------------------

const dialog = $("[data-replace-dialog]");
let replacing = null;

function openReplace(order) {
  replacing = order;
  const form = $("[data-replace-form]");
  form.price.value = order.price ?? "";
  form.quantity.value = order.remaining_quantity ?? order.quantity;
  setText(
    $("[data-replace-summary]"),
    `${order.side} ${order.symbol}: ${order.remaining_quantity ?? order.quantity} left at ${priceOf(order.price, order.symbol)}`,
  );
  $("[data-replace-error]").hidden = true;
  dialog.showModal();
}

function bindReplace() {
  $("[data-replace-close]").addEventListener("click", () => dialog.close());
  $("[data-replace-form]").addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = event.target;
    const body = {};
    if (form.price.value.trim() && form.price.value.trim() !== replacing.price) body.price = form.price.value.trim();
    if (form.quantity.value.trim()) body.quantity = form.quantity.value.trim();
    const answer = await api("POST", `orders/${replacing.id}/replace`, body);
    if (!answer.ok) {
      const box = $("[data-replace-error]");
      box.textContent = answer.error.message;
      box.hidden = false;
      return;
    }
    dialog.close();
    mergeTracked(answer.data);
    refreshSoon();
  });
}

// --- the compact book: prices fill the ticket -----------------------------------------------------

// Rows are kept and updated in place (not rebuilt ten times a second), so a price being clicked
// is never a node that has just been replaced.
function syncRows(tbody, levels, kind) {
  while (tbody.rows.length > levels.length) tbody.deleteRow(-1);
  while (tbody.rows.length < levels.length) {
    const button = el("button", { className: "book-price", attrs: { type: "button" } });
    const row = el("tr", { className: `book-${kind}` }, [el("td", { className: "num" }, [button]), cell("", "num book-qty")]);
    tbody.append(row);
  }
  const most = Math.max(1, ...book.bids.slice(0, BOOK_LEVELS).map((l) => Number(l[1])), ...book.asks.slice(0, BOOK_LEVELS).map((l) => Number(l[1])));
  levels.forEach(([px, qty], index) => {
    const row = tbody.rows[index];
    const button = row.cells[0].firstChild;
    const shown = price(px, tickPlaces);
    if (button.dataset.price !== px) {
      button.dataset.price = px;
      button.textContent = shown;
      button.setAttribute("aria-label", `${kind === "ask" ? "Buy" : "Sell"} at ${shown}`);
    }
    row.cells[1].textContent = qty;
    row.style.setProperty("--depth", `${Math.round((100 * Number(qty)) / most)}%`);
  });
}

function renderBook() {
  const asks = book.asks.slice(0, BOOK_LEVELS).reverse(); // the best ask next to the spread
  const bids = book.bids.slice(0, BOOK_LEVELS);
  syncRows($("[data-book-asks]"), asks, "ask");
  syncRows($("[data-book-bids]"), bids, "bid");
  const spreadCell = $("[data-book-spread]");
  if (book.bids.length && book.asks.length) {
    const spread = Number(book.asks[0][0]) - Number(book.bids[0][0]);
    spreadCell.textContent = `Spread ${price(spread, tickPlaces)}`;
  } else {
    spreadCell.textContent = lastPrice ? `Last ${price(lastPrice, tickPlaces)}` : "—";
  }
  $("[data-book-empty]").hidden = Boolean(book.bids.length || book.asks.length);
}

// An ask is what a buyer pays, a bid what a seller gets: clicking one sets the side to match.
function bindBook() {
  $("[data-book]").addEventListener("click", (event) => {
    const button = event.target.closest("button.book-price");
    if (!button) return;
    const kind = button.closest("tr").classList.contains("book-ask") ? "ask" : "bid";
    ticket.type.value = "limit";
    ticket.price.value = toPlaces(button.dataset.price, tickPlaces);
    ticket.querySelector(`input[name="side"][value="${kind === "ask" ? "buy" : "sell"}"]`).checked = true;
    syncTicket();
    updatePreview();
    ticket.quantity.focus();
  });
}

// --- the ticket ----------------------------------------------------------------------------------

const ticket = $("[data-ticket]");

function clearTicketErrors() {
  $("[data-ticket-error]").hidden = true;
  for (const node of ticket.querySelectorAll("[data-error-for]")) node.textContent = "";
  for (const node of ticket.querySelectorAll("[aria-invalid]")) node.removeAttribute("aria-invalid");
}

function showTicketError(error) {
  const fieldNode = error.field && ticket.querySelector(`[data-error-for="${CSS.escape(error.field)}"]`);
  if (fieldNode) {
    fieldNode.textContent = error.message;
    ticket.elements[error.field]?.setAttribute("aria-invalid", "true");
  }
  const box = $("[data-ticket-error]");
  box.textContent = error.message;
  box.hidden = false;
}

function syncTicket() {
  const market = ticket.type.value === "market";
  ticket.price.disabled = market;
  ticket.post_only.disabled = market;
  if (market) {
    ticket.post_only.checked = false;
    if (ticket.time_in_force.value === "gtc") ticket.time_in_force.value = "ioc";
  }
  ticket.querySelector("[data-ticket-submit]").classList.toggle("sell", ticket.side.value === "sell");
}

// A positive number typed in a field, or null.
function typed(input) {
  const text = input.value.trim();
  if (!/^\d+(\.\d+)?$/.test(text)) return null;
  const value = Number(text);
  return value > 0 ? value : null;
}

// What a market order of `quantity` would pay on the book as it is: the average over the levels
// it would take (null when the book has nothing on that side), and whether the book has enough.
function walkBook(levels, quantity) {
  let left = quantity;
  let notional = 0;
  for (const [px, qty] of levels) {
    const take = Math.min(left, Number(qty));
    notional += take * Number(px);
    left -= take;
    if (left <= 0) break;
  }
  const filled = quantity - left;
  return filled > 0 ? { average: notional / filled, enough: left <= 0 } : null;
}

// The order's value (notional), its expected fee (the taker rate if the price would cross the
// book, the maker rate otherwise) and what placing it reserves: for a buy, the value plus the fee
// at the higher of the two rates (what the exchange holds from the cash); for a sell, the quantity.
function orderPreview() {
  const side = ticket.side.value;
  const market = ticket.type.value === "market";
  const quantity = typed(ticket.quantity);
  const bestBid = book.bids.length ? Number(book.bids[0][0]) : null;
  const bestAsk = book.asks.length ? Number(book.asks[0][0]) : null;
  let px = market ? null : typed(ticket.price);
  let note = "";
  if (market && quantity) {
    const walk = walkBook(side === "buy" ? book.asks : book.bids, quantity);
    if (walk) {
      px = walk.average;
      note = walk.enough
        ? "A market order: its value is estimated from the book as it is now."
        : "A market order: the book has less than this quantity now; the rest would expire.";
    } else {
      note = "A market order: there is nothing on the other side of the book to trade with.";
    }
  }
  if (!quantity || !px) return { ready: false, note: note || "Enter a price and a quantity to see the order's value." };
  const crosses = market || (side === "buy" ? bestAsk !== null && px >= bestAsk : bestBid !== null && px <= bestBid);
  const bps = crosses ? instrument.taker_fee_bps : instrument.maker_fee_bps;
  const notional = px * quantity;
  const fee = (notional * bps) / 10_000;
  const worst = Math.max(0, instrument.taker_fee_bps, instrument.maker_fee_bps);
  if (crosses && ticket.post_only.checked) note = "Post-only: this price would cross the book, so the order would be rejected.";
  else if (!market) note = crosses ? "This price crosses the book: the order takes liquidity (taker fee)." : "This price rests on the book (maker fee).";
  return {
    ready: true,
    side,
    quantity,
    notional,
    fee,
    bps,
    role: crosses ? "taker" : "maker",
    reserve: side === "buy" ? notional + (notional * worst) / 10_000 : null,
    note,
  };
}

function updatePreview() {
  const p = orderPreview();
  const set = (name, value) => setText($(`[data-preview="${name}"]`), value, "—");
  set("notional", p.ready ? money(p.notional) : null);
  set("fee", p.ready ? money(p.fee) : null);
  setText($('[data-preview="fee-role"]'), p.ready ? `${p.role}, ${p.bps} bp${p.fee < 0 ? " rebate" : ""}` : "", "");
  set("reserve", p.ready ? (p.side === "buy" ? money(p.reserve) : `${ticket.quantity.value.trim()} ${symbol}`) : null);
  setText($("[data-preview-note]"), p.note, "");
}

// The market's price for the far-price check: the mid, else the last trade.
function referencePrice() {
  const m = mid(book.bids, book.asks);
  if (m !== null) return { value: m, what: "the mid" };
  if (lastPrice !== null) return { value: Number(lastPrice), what: "the last trade" };
  return null;
}

const farDialog = $("[data-far-dialog]");

// Resolves true when the user places the order anyway, false when they go back to the ticket.
function confirmFarPrice(body) {
  const ref = referencePrice();
  if (body.type !== "limit" || !ref) return Promise.resolve(true);
  const px = Number(body.price);
  const away = (px - ref.value) / ref.value;
  if (!Number.isFinite(px) || Math.abs(away) <= FAR_FROM_MARKET) return Promise.resolve(true);
  setText(
    $("[data-far-text]"),
    `Your ${body.side} price ${price(body.price, tickPlaces)} is ${(Math.abs(away) * 100).toFixed(1)} % ${away > 0 ? "above" : "below"} ${ref.what} (${price(ref.value, tickPlaces + (onGrid(ref.value, tickPlaces) ? 0 : 1))}). Place the order anyway?`,
  );
  farDialog.returnValue = "";
  farDialog.showModal();
  return new Promise((resolve) => {
    farDialog.addEventListener("close", () => resolve(farDialog.returnValue === "place"), { once: true });
  });
}

function bindTicket() {
  setText(
    $("[data-instrument-hint]"),
    `${instrument.symbol}: tick ${instrument.tick_size}, lot ${instrument.lot_size}, quantity ${instrument.min_order_qty}–${instrument.max_order_qty}; fees: maker ${instrument.maker_fee_bps} bp, taker ${instrument.taker_fee_bps} bp.`,
  );
  ticket.addEventListener("change", () => {
    syncTicket();
    updatePreview();
  });
  ticket.addEventListener("input", updatePreview);
  syncTicket();
  updatePreview();
  ticket.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearTicketErrors();
    const body = {
      symbol,
      side: ticket.side.value,
      type: ticket.type.value,
      time_in_force: ticket.time_in_force.value,
      quantity: ticket.quantity.value.trim(),
      post_only: ticket.post_only.checked,
    };
    if (body.type === "limit") body.price = ticket.price.value.trim();
    const submit = ticket.querySelector("[data-ticket-submit]");
    submit.disabled = true;
    try {
      if (!(await confirmFarPrice(body))) return;
      const answer = await api("POST", "orders/", body);
      if (!answer.ok) {
        tracked = null;
        renderResult();
        showTicketError(answer.error);
        return;
      }
      const o = answer.data;
      tracked = null;
      mergeTracked(o);
      if (OPEN.includes(o.status) && !orders.some((x) => x.id === o.id)) {
        orders.unshift(o);
        renderOrders();
      }
      refreshSoon();
    } finally {
      submit.disabled = false;
    }
  });
  $("[data-cancel-all]").addEventListener("click", async () => {
    if (!orders.length || !window.confirm("Cancel all your open orders?")) return;
    const answer = await api("POST", "orders/cancel-all", {});
    if (!answer.ok) showTicketError(answer.error);
    refreshSoon();
  });
}

// --- live data -----------------------------------------------------------------------------------

function startMarket() {
  const onBook = (frame) => {
    book = { bids: frame.bids, asks: frame.asks };
    if (frame.stats?.last_price) lastPrice = frame.stats.last_price;
    renderBbo(bar, frame.bids, frame.asks, frame.stats?.last_price);
    for (const side of ["bid", "ask"]) {
      const node = bar.querySelector(`[data-bbo="${side}"]`);
      const level = (side === "bid" ? frame.bids : frame.asks)[0];
      if (node && level) node.textContent = price(level[0], tickPlaces);
    }
    const spread = bar.querySelector('[data-bbo="spread"]');
    if (spread && frame.bids.length && frame.asks.length) {
      spread.textContent = price(Number(frame.asks[0][0]) - Number(frame.bids[0][0]), tickPlaces);
    }
    if (lastPrice) setText($('[data-bbo="last"]'), price(lastPrice, tickPlaces));
    $("[data-halted]").hidden = !frame.halted;
    $("[data-paused]").hidden = !frame.paused;
    markOfSymbol = mid(frame.bids, frame.asks);
    renderBook();
    updatePreview();
    renderAccount();
  };
  new MarketFeed(
    symbol,
    {
      snapshot: onBook,
      book: onBook,
      trades(frame) {
        lastPrice = frame.trades[frame.trades.length - 1].price;
        setText($('[data-bbo="last"]'), price(lastPrice, tickPlaces));
      },
      stats(frame) {
        if (frame.last_price) lastPrice = frame.last_price;
      },
    },
    indicator.track("market"),
  ).start();
}

function startAccount() {
  new LiveSocket("/ws/account/", {
    onMessage(frame) {
      if (frame.type === "executions") applyExecutions(frame);
    },
    onOpen: refreshSoon, // whatever happened while disconnected
    onState: indicator.track("account"),
  }).connect();
}

// Queue places move with other traders' fills and cancels, which send this account nothing:
// read them again every QUEUE_REFRESH_MS while an order rests (one REST page, one MGET).
const QUEUE_REFRESH_MS = 1000;
setInterval(() => {
  if (!document.hidden && orders.length) loadOrders();
}, QUEUE_REFRESH_MS);

if (symbol) {
  labelZones();
  bindSymbolSwitcher();
  bindTicket();
  bindBook();
  bindReplace();
  startMarket();
  startAccount();
  loadOrders();
  loadFills();
  loadAccount();
}
