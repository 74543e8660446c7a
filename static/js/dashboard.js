// The market dashboard: book, depth, tape, candles, stats over /ws/market/{SYM}/; agents and the
// simulation over /ws/sim/; staff controls through the REST API.

import { api } from "./api.js";
import { DepthChart, PriceChart } from "./charts.js";
import { $, bindSymbolSwitcher, cell, el, fillRows, money, pageConfig, setText, signClass, timeOfDay } from "./dom.js";
import { MarketFeed, renderBbo } from "./market.js";
import { ConnectionIndicator, LiveSocket } from "./socket.js";

const LADDER_DEPTH = 10;
const TAPE_LENGTH = 30;

const config = pageConfig();
const symbol = config.symbol;
const indicator = new ConnectionIndicator($("[data-connection]"));
const bar = $(".market-bar");

let priceChart = null;
let depthChart = null;
let tape = [];
let lastPrice = null;

function charts() {
  if (!priceChart) {
    try {
      priceChart = new PriceChart($("[data-price-chart]"));
      depthChart = new DepthChart($("[data-depth-chart]"));
    } catch (error) {
      console.error("charts unavailable", error);
    }
  }
}

function renderBook(bids, asks, halted, paused) {
  renderBbo(bar, bids, asks, lastPrice);
  $("[data-halted]").hidden = !halted;
  $("[data-paused]").hidden = !paused;
  const rows = [];
  for (const [price, qty] of asks.slice(0, LADDER_DEPTH).reverse()) {
    rows.push(el("tr", { className: "ask" }, [cell(""), cell(price, "num price"), cell(qty, "num")]));
  }
  for (const [price, qty] of bids.slice(0, LADDER_DEPTH)) {
    rows.push(el("tr", { className: "bid" }, [cell(qty, "num"), cell(price, "num price"), cell("")]));
  }
  fillRows($("[data-ladder] tbody"), rows, (row) => row, $("[data-ladder-empty]"));
  depthChart?.update(bids, asks);
}

function renderTape() {
  fillRows(
    $("[data-tape]"),
    tape,
    (t) =>
      el("tr", { className: t.side === "buy" ? "up" : "down" }, [
        cell(timeOfDay(t.time)),
        cell(t.price, "num"),
        cell(t.qty, "num"),
      ]),
    $("[data-tape-empty]"),
  );
}

function renderStats(stats) {
  for (const name of ["trades_per_s", "orders_per_s", "volume"]) {
    setText($(`[data-stat="${name}"]`), stats[name]);
  }
  if (stats.last_price) lastPrice = stats.last_price;
  setText($('[data-bbo="last"]'), lastPrice);
}

async function loadCandles() {
  const answer = await api("GET", `instruments/${encodeURIComponent(symbol)}/candles/?interval=1m&limit=240`);
  if (answer.ok && priceChart) {
    priceChart.load(answer.data.candles);
    $("[data-price-empty]").hidden = !priceChart.empty;
  }
}

function startMarket() {
  new MarketFeed(
    symbol,
    {
      snapshot(frame) {
        tape = [...frame.trades].reverse().slice(0, TAPE_LENGTH);
        lastPrice = frame.stats?.last_price ?? tape[0]?.price ?? null;
        renderBook(frame.bids, frame.asks, frame.halted, frame.paused);
        renderTape();
        renderStats(frame.stats || {});
      },
      book(frame) {
        renderBook(frame.bids, frame.asks, frame.halted, frame.paused);
      },
      trades(frame) {
        for (const trade of frame.trades) {
          priceChart?.trade(trade.price, trade.time);
          lastPrice = trade.price;
        }
        if (priceChart) $("[data-price-empty]").hidden = true;
        tape = [...frame.trades].reverse().concat(tape).slice(0, TAPE_LENGTH);
        renderTape();
        setText($('[data-bbo="last"]'), lastPrice);
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
}

function renderLeaderboard(rows) {
  // This symbol's agents (the leaderboard is best equity first).
  fillRows(
    $("[data-leaderboard]"),
    rows.filter((row) => !row.symbol || row.symbol === symbol),
    (row) =>
      el("tr", {}, [
        cell(row.name),
        cell(row.strategy),
        cell(money(row.equity), "num"),
        cell(money(row.realized_pnl), `num ${signClass(row.realized_pnl)}`),
        cell(money(row.unrealized_pnl), `num ${signClass(row.unrealized_pnl)}`),
        cell(money(row.fees_paid), "num"),
        cell(row.position, "num"),
        cell(row.open_orders, "num"),
        cell(row.status, `status status-${row.status}`),
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
  bindSymbolSwitcher();
  charts();
  startMarket();
  startSim();
  bindControls();
  loadCandles();
}
