// Charts: live candles of a chosen interval with volume and the simulation's events as markers
// (lightweight-charts), and the cumulative depth (uPlot), both
// installed from npm and served from static/vendor/.

import {
  CandlestickSeries,
  createChart,
  createSeriesMarkers,
  HistogramSeries,
  TickMarkType,
} from "../vendor/lightweight-charts.mjs";
import uPlot from "../vendor/uPlot.esm.js";

import { dateTime, places, price, utcTitle } from "./dom.js";

const css = (name, fallback) =>
  getComputedStyle(document.documentElement).getPropertyValue(name).trim() || fallback;

export const INTERVALS = { "5s": 5, "15s": 15, "1m": 60, "5m": 300, "15m": 900, "1h": 3600 };
// The bars shown when candles load: the latest ones, at most this many, at least MIN_BARS wide
// so that a market that just started shows a few wide candles, not one spread over the width.
const VISIBLE_BARS = 120;
const MIN_BARS = 24;

const UP = "#1a7f37";
const DOWN = "#cf222e";
const pad = (n) => String(n).padStart(2, "0");

// The time axis in the viewer's zone (lightweight-charts draws UTC by default): the page's one clock.
function tickMark(time, type) {
  const d = new Date(time * 1000);
  switch (type) {
    case TickMarkType.Year:
      return String(d.getFullYear());
    case TickMarkType.Month:
      return d.toLocaleString([], { month: "short" });
    case TickMarkType.DayOfMonth:
      return d.toLocaleString([], { day: "numeric", month: "short" });
    case TickMarkType.TimeWithSeconds:
      return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
    default:
      return `${pad(d.getHours())}:${pad(d.getMinutes())}`;
  }
}

const MARKERS = {
  pause: { shape: "square", color: "#9a6700", text: "Paused" },
  resume: { shape: "circle", color: "#0969da", text: "Resumed" },
  reset: { shape: "square", color: "#8250df", text: "Reset" },
  shock: { shape: "arrowDown", color: "#bc4c00", text: "Shock" },
  volatility: { shape: "square", color: "#9a6700", text: "Volatility pause" },
};

export class PriceChart {
  constructor(container, { tickSize }) {
    this.container = container;
    this.decimals = places(tickSize);
    this.interval = 60;
    this.chart = createChart(container, {
      autoSize: true,
      layout: { background: { color: "transparent" }, textColor: css("--muted", "#5b6675") },
      grid: {
        vertLines: { color: css("--border", "#dde3ea") },
        horzLines: { color: css("--border", "#dde3ea") },
      },
      localization: {
        timeFormatter: (time) => dateTime(time * 1000),
        priceFormatter: (value) => price(value, this.decimals),
      },
      timeScale: { timeVisible: true, secondsVisible: false, tickMarkFormatter: tickMark, rightOffset: 2 },
      rightPriceScale: { borderVisible: false },
    });
    this.series = this.chart.addSeries(CandlestickSeries, {
      upColor: UP,
      downColor: DOWN,
      borderVisible: false,
      wickUpColor: UP,
      wickDownColor: DOWN,
      priceFormat: { type: "price", precision: this.decimals, minMove: Number(tickSize) },
    });
    // Volume in a pane of its own under the candles.
    this.volume = this.chart.addSeries(
      HistogramSeries,
      { priceFormat: { type: "volume" }, priceLineVisible: false, lastValueVisible: false },
      1,
    );
    this.chart.panes()[1]?.setHeight(70);
    this.markers = createSeriesMarkers(this.series, []);
    this.events = []; // the simulation's events: {time (s), kind, text}
    this.last = null;
    this.bars = 0;
  }

  // Candles from the REST API: [{start, open, high, low, close, volume}], oldest first.
  load(candles, intervalSeconds) {
    this.interval = intervalSeconds;
    this.chart.applyOptions({ timeScale: { secondsVisible: intervalSeconds < 60 } });
    const bars = candles.map((c) => ({
      time: Math.floor(Date.parse(c.start) / 1000),
      open: Number(c.open),
      high: Number(c.high),
      low: Number(c.low),
      close: Number(c.close),
      volume: Number(c.volume),
    }));
    this.series.setData(bars.map(({ volume, ...bar }) => bar));
    this.volume.setData(bars.map((b) => this.volumeBar(b)));
    this.last = bars.length ? { ...bars[bars.length - 1] } : null;
    this.bars = bars.length;
    this.showLatest();
    this.drawMarkers();
  }

  showLatest() {
    if (!this.bars) return;
    const shown = Math.min(Math.max(this.bars, MIN_BARS), VISIBLE_BARS);
    this.chart.timeScale().setVisibleLogicalRange({ from: this.bars - shown - 0.5, to: this.bars + 1.5 });
  }

  volumeBar(bar) {
    return { time: bar.time, value: bar.volume, color: bar.close >= bar.open ? "rgba(26,127,55,0.5)" : "rgba(207,34,46,0.5)" };
  }

  // A live trade updates the current candle or opens the next one.
  trade(tradePrice, quantity, timeMs) {
    const value = Number(tradePrice);
    let start = Math.floor(timeMs / 1000 / this.interval) * this.interval;
    if (this.last && start < this.last.time) start = this.last.time; // clocks disagree a little
    if (this.last && this.last.time === start) {
      this.last.high = Math.max(this.last.high, value);
      this.last.low = Math.min(this.last.low, value);
      this.last.close = value;
      this.last.volume += Number(quantity);
    } else {
      this.last = { time: start, open: value, high: value, low: value, close: value, volume: Number(quantity) };
      this.bars += 1;
    }
    const { volume, ...bar } = this.last;
    this.series.update(bar);
    this.volume.update(this.volumeBar(this.last));
    this.describe();
  }

  // The simulation's events (pauses, resets, shocks, volatility pauses) as markers on the candles.
  mark(kind, timeMs, detail = "") {
    const style = MARKERS[kind];
    if (!style) return;
    const time = Math.floor(timeMs / 1000);
    if (this.events.some((e) => e.kind === kind && e.time === time)) return;
    this.events.push({ kind, time, text: detail ? `${style.text} ${detail}` : style.text, title: utcTitle(timeMs) });
    this.drawMarkers();
  }

  drawMarkers() {
    if (!this.last) {
      this.markers.setMarkers([]);
      return;
    }
    // A marker sits on a candle: the one its time falls in (the latest if it is newer).
    const markers = this.events
      .map((e) => {
        const time = Math.min(Math.floor(e.time / this.interval) * this.interval, this.last.time);
        const style = MARKERS[e.kind];
        return { time, position: "aboveBar", shape: style.shape, color: style.color, text: e.text };
      })
      .sort((a, b) => a.time - b.time);
    this.markers.setMarkers(markers);
    this.describe();
  }

  // What the chart shows, in words, for screen readers (a canvas says nothing).
  describe() {
    const node = this.container;
    node.setAttribute("role", "img");
    if (!this.last) {
      node.setAttribute("aria-label", "Price chart: no trades yet.");
      return;
    }
    const events = this.events.length ? `; ${this.events.map((e) => e.text).join(", ")}` : "";
    node.setAttribute("aria-label", `Price chart: last ${price(this.last.close, this.decimals)}${events}.`);
    node.dataset.markers = String(this.events.length);
  }

  get markerCount() {
    return this.events.length;
  }

  get empty() {
    return this.last === null;
  }
}

export class DepthChart {
  constructor(container, { tickSize }) {
    this.container = container;
    this.decimals = places(tickSize);
    // Bids: the total at a price holds up to it; asks: from it on.
    const bidSteps = uPlot.paths.stepped({ align: -1 });
    const askSteps = uPlot.paths.stepped({ align: 1 });
    this.plot = new uPlot(
      {
        width: container.clientWidth || 300,
        height: container.clientHeight || 220,
        legend: { show: false },
        cursor: { drag: { x: false, y: false } },
        scales: { x: { time: false } },
        axes: [
          {
            stroke: css("--muted", "#5b6675"),
            grid: { stroke: css("--border", "#dde3ea") },
            values: (u, ticks) => ticks.map((t) => price(t, this.decimals)),
          },
          { stroke: css("--muted", "#5b6675"), grid: { stroke: css("--border", "#dde3ea") }, size: 60 },
        ],
        series: [
          {},
          { label: "Bids", stroke: "#1a7f37", fill: "rgba(26,127,55,0.18)", paths: bidSteps, points: { show: false } },
          { label: "Asks", stroke: "#cf222e", fill: "rgba(207,34,46,0.18)", paths: askSteps, points: { show: false } },
        ],
      },
      [[], [], []],
      container,
    );
    // The chart fills its card (the card's height is the ladder's beside it).
    new ResizeObserver(() => {
      this.plot.setSize({ width: container.clientWidth, height: Math.max(container.clientHeight, 160) });
    }).observe(container);
  }

  // Cumulative quantity from the best price outwards on each side.
  update(bids, asks) {
    const xs = [];
    const bidY = [];
    const askY = [];
    let total = 0;
    const bidPoints = bids.map(([p, q]) => [Number(p), (total += Number(q))]).reverse();
    total = 0;
    const askPoints = asks.map(([p, q]) => [Number(p), (total += Number(q))]);
    // A step needs two points: each side's outermost level is drawn a little further out.
    const span = Math.max(
      (askPoints.at(-1)?.[0] ?? bidPoints.at(-1)?.[0] ?? 0) - (bidPoints[0]?.[0] ?? askPoints[0]?.[0] ?? 0),
      Math.abs(bidPoints.at(-1)?.[0] ?? askPoints[0]?.[0] ?? 1) * 0.002,
    );
    if (bidPoints.length) bidPoints.unshift([bidPoints[0][0] - span * 0.05, bidPoints[0][1]]);
    if (askPoints.length) askPoints.push([askPoints.at(-1)[0] + span * 0.05, askPoints.at(-1)[1]]);
    for (const [p, q] of bidPoints) {
      xs.push(p);
      bidY.push(q);
      askY.push(null);
    }
    for (const [p, q] of askPoints) {
      xs.push(p);
      bidY.push(null);
      askY.push(q);
    }
    this.plot.setData([xs, bidY, askY]);
    // The chart in words (a canvas says nothing to a screen reader), prices to the tick.
    const range = (points) =>
      points.length ? `${price(points[0][0], this.decimals)} to ${price(points.at(-1)[0], this.decimals)}` : "none";
    this.container.setAttribute("role", "img");
    this.container.setAttribute(
      "aria-label",
      `Depth: bids ${range(bids.map(([p]) => [p]).reverse())}, asks ${range(asks.map(([p]) => [p]))}.`,
    );
  }
}
