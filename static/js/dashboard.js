// The market dashboard: book, depth, tape, candles, stats over /ws/market/{SYM}/; agents and the
// simulation over /ws/sim/; staff controls through the REST API.

import { api } from "./api.js";
import { DepthChart, INTERVALS, PriceChart } from "./charts.js";
import {
  $,
  $$,
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
} from "./dom.js";
import { steadyOrder } from "./leaderboard.js";
import { MarketFeed, renderBbo } from "./market.js";
import { ConnectionIndicator, LiveSocket } from "./socket.js";

const LADDER_DEPTH = 10;
const TAPE_LENGTH = 20; // as many rows as the ladder beside it

const config = pageConfig();
const symbol = config.symbol;
const instrument = config.instruments.find((i) => i.symbol === symbol);
const tick = instrument ? places(instrument.tick_size) : undefined; // prices to the tick
const indicator = new ConnectionIndicator($("[data-connection]"));
const bar = $(".market-bar");

let priceChart = null;
let depthChart = null;
let tape = [];
let lastPrice = null;
let stopped = false; // halted or paused: nothing trades, whatever the last seconds' average says
let wasPaused = null;
let stats = {};
let day = null; // {open, high, low} of the last 24 hours, kept up by live trades
let interval = localStorage.getItem("flashbook.interval") || "1m";
if (!(interval in INTERVALS)) interval = "1m";

function charts() {
  if (!priceChart) {
    try {
      priceChart = new PriceChart($("[data-price-chart]"), { tickSize: instrument.tick_size });
      depthChart = new DepthChart($("[data-depth-chart]"), { tickSize: instrument.tick_size });
    } catch (error) {
      console.error("charts unavailable", error);
    }
  }
}

function renderBook(bids, asks, halted, paused) {
  renderBbo(bar, bids, asks, lastPrice, tick);
  $("[data-halted]").hidden = !halted;
  $("[data-paused]").hidden = !paused;
  if (wasPaused === false && paused) priceChart?.mark("volatility", Date.now());
  wasPaused = Boolean(paused);
  stopped = Boolean(halted || paused);
  const rows = [];
  for (const [p, qty] of asks.slice(0, LADDER_DEPTH).reverse()) {
    rows.push(el("tr", { className: "ask" }, [cell(""), cell(price(p, tick), "num price"), cell(qty, "num")]));
  }
  for (const [p, qty] of bids.slice(0, LADDER_DEPTH)) {
    rows.push(el("tr", { className: "bid" }, [cell(qty, "num"), cell(price(p, tick), "num price"), cell("")]));
  }
  fillRows($("[data-ladder] tbody"), rows, (row) => row, $("[data-ladder-empty]"));
  depthChart?.update(bids, asks);
  const total = (side) => side.reduce((sum, [, q]) => sum + Number(q), 0);
  setText($('[data-stat="depth"]'), bids.length || asks.length ? `${total(bids)} / ${total(asks)}` : null);
  renderStats();
}

function renderTape() {
  fillRows(
    $("[data-tape]"),
    tape,
    (t) =>
      el("tr", { className: t.side === "buy" ? "up" : "down" }, [
        timeCell(t.time),
        cell(price(t.price, tick), "num"),
        cell(t.qty, "num"),
      ]),
    $("[data-tape-empty]"),
  );
}

// The exchange card. While the book is halted or paused nothing can trade: the rates say 0 at
// once rather than fading over the bridge's 10-second average.
function renderStats(frame) {
  if (frame) stats = frame;
  for (const name of ["trades_per_s", "orders_per_s"]) {
    const node = $(`[data-stat="${name}"]`);
    if (stopped && name === "trades_per_s") setText(node, "0 · paused");
    else setText(node, stats[name]);
  }
  setText($('[data-stat="volume"]'), stats.volume);
  if (stats.last_price && lastPrice === null) lastPrice = stats.last_price;
  const last = lastPrice === null ? null : price(lastPrice, tick);
  setText($('[data-bbo="last"]'), last);
  setText($('[data-stat="last_price"]'), last);
  if (day && lastPrice !== null) {
    const change = ((Number(lastPrice) - day.open) / day.open) * 100;
    const node = $('[data-stat="change"]');
    setText(node, `${change >= 0 ? "+" : ""}${change.toFixed(2)} %`);
    node.className = signClass(change);
    setText($('[data-stat="high"]'), price(day.high, tick));
    setText($('[data-stat="low"]'), price(day.low, tick));
  }
}

async function loadCandles() {
  const path = `instruments/${encodeURIComponent(symbol)}/candles/?interval=${interval}&limit=500`;
  const answer = await api("GET", path);
  if (answer.ok && priceChart) {
    priceChart.load(answer.data.candles, INTERVALS[interval]);
    $("[data-price-empty]").hidden = !priceChart.empty;
    $("[data-price-chart]").dataset.shownInterval = interval;
    $("[data-price-chart]").dataset.candles = String(answer.data.candles.length);
  }
}

// Open, high and low of the last 24 hours, from hourly candles.
async function loadDay() {
  const answer = await api("GET", `instruments/${encodeURIComponent(symbol)}/candles/?interval=1h&limit=24`);
  if (!answer.ok || !answer.data.candles.length) return;
  const candles = answer.data.candles;
  day = {
    open: Number(candles[0].open),
    high: Math.max(...candles.map((c) => Number(c.high))),
    low: Math.min(...candles.map((c) => Number(c.low))),
  };
  renderStats();
}

function bindIntervals() {
  for (const button of $$("[data-interval]")) {
    button.setAttribute("aria-pressed", String(button.dataset.interval === interval));
    button.addEventListener("click", () => {
      interval = button.dataset.interval;
      localStorage.setItem("flashbook.interval", interval);
      for (const other of $$("[data-interval]")) other.setAttribute("aria-pressed", String(other === button));
      loadCandles();
    });
  }
}

// The simulation's past events as markers; later ones arrive with the sim frames.
async function loadEvents() {
  const answer = await api("GET", "sim/events/");
  if (!answer.ok || !priceChart) return;
  for (const event of answer.data) {
    if (event.kind === "shock" && event.symbol !== symbol) continue;
    priceChart.mark(event.kind, Date.parse(event.at), event.kind === "shock" ? `${event.pct}%` : "");
  }
}

function startMarket() {
  new MarketFeed(
    symbol,
    {
      snapshot(frame) {
        tape = [...frame.trades].reverse().slice(0, TAPE_LENGTH);
        lastPrice = frame.stats?.last_price ?? tape[0]?.price ?? null;
        stats = frame.stats || {};
        renderBook(frame.bids, frame.asks, frame.halted, frame.paused);
        renderTape();
      },
      book(frame) {
        renderBook(frame.bids, frame.asks, frame.halted, frame.paused);
      },
      trades(frame) {
        for (const trade of frame.trades) {
          priceChart?.trade(trade.price, trade.qty, trade.time);
          lastPrice = trade.price;
          const value = Number(trade.price);
          if (day) {
            day.high = Math.max(day.high, value);
            day.low = Math.min(day.low, value);
          } else {
            day = { open: value, high: value, low: value };
          }
        }
        if (priceChart) $("[data-price-empty]").hidden = true;
        tape = [...frame.trades].reverse().concat(tape).slice(0, TAPE_LENGTH);
        renderTape();
        renderStats();
      },
      stats(frame) {
        renderStats(frame);
      },
    },
    indicator.track("market"),
  ).start();
}

// --- agents and the simulation ------------------------------------------------------------------

const SIM_LABEL = { running: "Running", paused: "Paused" };
let simSeen = null; // the last sim frame: a change of state or a new shock is a chart marker

function markSim(frame) {
  if (simSeen && frame.state !== simSeen.state && frame.changed_at) {
    priceChart?.mark(frame.state === "paused" ? "pause" : "resume", Date.parse(frame.changed_at));
  }
  const shock = frame.last_shock;
  if (simSeen && shock && shock.at !== simSeen.last_shock?.at && shock.symbol === symbol) {
    priceChart?.mark("shock", Date.parse(shock.at), `${shock.pct}%`);
  }
  simSeen = frame;
}

function renderSim(frame) {
  const badge = $("[data-sim-state]");
  if (!frame.available && frame.available !== undefined) {
    setText(badge, "Unavailable");
    badge.className = "badge";
    badge.title = "The agents' simulation is not installed on this server.";
    for (const button of document.querySelectorAll("[data-controls] button")) button.disabled = true;
    return;
  }
  setText(badge, SIM_LABEL[frame.state] || frame.state);
  badge.className = `badge ${frame.state === "running" ? "badge-ok" : "badge-warn"}`;
  badge.title = frame.runner_alive ? "The agents' runner is alive." : "The agents' runner is not running.";
  markSim(frame);
  // Only the control that changes something is offered.
  const pause = $('[data-controls] [data-action="pause"]');
  const resume = $('[data-controls] [data-action="resume"]');
  if (pause) pause.disabled = frame.state === "paused";
  if (resume) resume.disabled = frame.state === "running";
}

let leaderboardOrder = []; // the names as shown: rows keep their places unless clearly passed

// A cell that names its column, for the phone's card layout (CSS shows the label there).
function labelled(label, text, className) {
  const node = cell(text, className);
  node.dataset.label = label;
  return node;
}

function renderLeaderboard(rows) {
  const mine = steadyOrder(leaderboardOrder, rows.filter((row) => !row.symbol || row.symbol === symbol));
  leaderboardOrder = mine.map((row) => row.name);
  fillRows(
    $("[data-leaderboard]"),
    mine,
    (row) =>
      el("tr", { attrs: { "data-agent": row.name } }, [
        labelled("Agent", row.name, "agent-name"),
        labelled("Strategy", row.strategy),
        labelled("Equity", money(row.equity), "num"),
        labelled("Realized", money(row.realized_pnl), `num ${signClass(row.realized_pnl)}`),
        labelled("Unrealized", money(row.unrealized_pnl), `num ${signClass(row.unrealized_pnl)}`),
        labelled("Fees", money(row.fees_paid), "num"),
        labelled("Position", row.position, "num"),
        labelled("Orders", row.open_orders, "num"),
        labelled("Status", row.status, `status status-${row.status}`),
      ]),
    $("[data-leaderboard-empty]"),
  );
}

function startSim() {
  new LiveSocket("/ws/sim/", {
    onMessage(frame) {
      if (frame.type === "sim") renderSim(frame);
      else if (frame.type === "leaderboard") renderLeaderboard(frame.rows || []);
    },
    onState: indicator.track("sim"),
  }).connect();
}

// --- staff controls ---------------------------------------------------------------------------

const CONFIRM = {
  pause: "Pause the simulation? The agents stop trading until you resume.",
  resume: "Resume the simulation?",
  reset: "Reset the market? Every resting order is cancelled and the agents start afresh.",
};

function showResult(text, isError = false) {
  const node = $("[data-control-result]");
  node.textContent = text;
  node.classList.toggle("error", isError);
}

async function control(action, body) {
  const answer = await api("POST", `sim/${action}`, body);
  if (!answer.ok) {
    showResult(answer.error.message, true);
    return;
  }
  renderSim(answer.data);
  const state = SIM_LABEL[answer.data.state] || answer.data.state;
  const shock = answer.data.last_shock;
  showResult(
    action === "shock" && shock
      ? `Shocked ${shock.symbol} by ${shock.pct}%. The simulation is ${state.toLowerCase()}.`
      : `Done: the simulation is ${state.toLowerCase()}.`,
  );
}

function bindControls() {
  const panel = $("[data-controls]");
  if (!panel) return;
  for (const button of panel.querySelectorAll("[data-action]")) {
    button.addEventListener("click", () => {
      const action = button.dataset.action;
      if (window.confirm(CONFIRM[action])) control(action);
    });
  }
  $("[data-shock]").addEventListener("submit", (event) => {
    event.preventDefault();
    const form = event.target;
    const size = Number(form.size.value);
    if (!(size > 0 && size <= 50)) {
      showResult("Choose a shock between 0.1 and 50 percent.", true);
      return;
    }
    const pct = `${form.direction.value === "-" ? "-" : ""}${size}`;
    if (window.confirm(`Move ${symbol}'s fundamental value by ${pct}%?`)) {
      control("shock", { symbol, pct });
    }
  });
}

if (symbol) {
  labelZones();
  bindSymbolSwitcher();
  bindIntervals();
  charts();
  startMarket();
  startSim();
  bindControls();
  loadCandles().then(loadEvents);
  loadDay();
}
