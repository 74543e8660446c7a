// The trading page: the order ticket, open orders (cancel, replace), fills and the account, kept
// live by the user's executions over /ws/account/ and the book over /ws/market/{SYM}/.

import { api } from "./api.js";
import { $, bindSymbolSwitcher, cell, el, fillRows, money, pageConfig, places, price, setText, signClass, timeOfDay } from "./dom.js";
import { MarketFeed, mid, renderBbo } from "./market.js";
import { ConnectionIndicator, LiveSocket } from "./socket.js";

const config = pageConfig();
const symbol = config.symbol;
const instrument = config.instruments.find((i) => i.symbol === symbol);
const tickPlaces = places(instrument.tick_size); // a live mark is written to the tick
const indicator = new ConnectionIndicator($("[data-connection]"));
const bar = $(".market-bar");

let orders = []; // open orders, newest first, as the API describes them
let fills = [];
let account = null;
let markOfSymbol = null;

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
    // The symbol on screen: its live mid, to the tick (a half tick shows its extra digit).
    p.live_mark =
      p.symbol === symbol && markOfSymbol !== null
        ? price(markOfSymbol, onGrid(markOfSymbol, tickPlaces) ? tickPlaces : tickPlaces + 1)
        : price(p.mark_price);
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
        cell(p.symbol),
        cell(p.quantity, "num"),
        cell(p.average_price, "num"),
        cell(p.live_mark, "num"),
        cell(money(p.live_unrealized), `num ${signClass(p.live_unrealized)}`),
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

function renderOrders() {
  fillRows(
    $("[data-orders]"),
    orders,
    (o) => {
      const cancel = el("button", { className: "button button-quiet button-small", text: "Cancel", attrs: { type: "button", "data-cancel": o.id } });
      cancel.addEventListener("click", () => cancelOrder(o, cancel));
      const replace = el("button", { className: "button button-quiet button-small", text: "Replace", attrs: { type: "button" } });
      replace.addEventListener("click", () => openReplace(o));
      return el("tr", { attrs: { "data-order-id": o.id } }, [
        cell(o.symbol),
        cell(o.side, o.side === "buy" ? "up" : "down"),
        cell(o.price ?? "market", "num"),
        cell(o.quantity, "num"),
        cell(o.filled_quantity, "num"),
        cell(o.status.replace("_", " ").toLowerCase(), "status"),
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
    (f) =>
      el("tr", {}, [
        cell(timeOfDay(Date.parse(f.executed_at))),
        cell(f.symbol),
        cell(f.side, f.side === "buy" ? "up" : "down"),
        cell(f.price, "num"),
        cell(f.quantity, "num"),
        cell(f.role),
        // A fill from the live feed has no fee yet: the recorder charges it (the next refresh).
        cell(f.fee ?? "…", "num"),
      ]),
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
    setTimeout(() => {
      loadOrders();
      loadAccount();
    }, 1200);
  }, 250);
}

// Executions patch the open orders at once (the refresh above confirms them).
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
    } else if (event.kind === "cancelled" || event.kind === "rejected") {
      order.status = event.kind === "cancelled" ? "CANCELED" : "REJECTED";
    }
  }
  orders = orders.filter((o) => ["PENDING", "NEW", "PARTIALLY_FILLED"].includes(o.status));
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
  refreshSoon();
}

// --- replace -------------------------------------------------------------------------------------

const dialog = $("[data-replace-dialog]");
let replacing = null;

function openReplace(order) {
  replacing = order;
  const form = $("[data-replace-form]");
  form.price.value = order.price ?? "";
  form.quantity.value = order.remaining_quantity ?? order.quantity;
  setText($("[data-replace-summary]"), `${order.side} ${order.symbol}: ${order.remaining_quantity ?? order.quantity} left at ${order.price}`);
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
    refreshSoon();
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

function bindTicket() {
  setText(
    $("[data-instrument-hint]"),
    `${instrument.symbol}: tick ${instrument.tick_size}, lot ${instrument.lot_size}, quantity ${instrument.min_order_qty}–${instrument.max_order_qty}.`,
  );
  ticket.addEventListener("change", syncTicket);
  syncTicket();
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
    const answer = await api("POST", "orders/", body);
    submit.disabled = false;
    const result = $("[data-ticket-result]");
    if (!answer.ok) {
      result.textContent = "";
      showTicketError(answer.error);
      return;
    }
    const o = answer.data;
    const reason = o.reject_reason ? ` (${o.reject_reason})` : "";
    result.textContent = `Order ${o.id}: ${o.side} ${o.quantity} ${o.symbol} ${o.price ? "at " + o.price : "at market"} — ${o.status.toLowerCase()}${reason}.`;
    if (["PENDING", "NEW", "PARTIALLY_FILLED"].includes(o.status) && !orders.some((x) => x.id === o.id)) {
      orders.unshift(o);
      renderOrders();
    }
    refreshSoon();
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
    renderBbo(bar, frame.bids, frame.asks, frame.stats?.last_price);
    $("[data-halted]").hidden = !frame.halted;
    $("[data-paused]").hidden = !frame.paused;
    markOfSymbol = mid(frame.bids, frame.asks);
    renderAccount();
  };
  new MarketFeed(
    symbol,
    {
      snapshot: onBook,
      book: onBook,
      trades(frame) {
        setText($('[data-bbo="last"]'), frame.trades[frame.trades.length - 1].price);
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

if (symbol) {
  bindSymbolSwitcher();
  bindTicket();
  bindReplace();
  startMarket();
  startAccount();
  loadOrders();
  loadFills();
  loadAccount();
}
