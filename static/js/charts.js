// Charts: live 1-minute candles (lightweight-charts) and the cumulative depth (uPlot), both
// installed from npm and served from static/vendor/.

import { CandlestickSeries, createChart } from "../vendor/lightweight-charts.mjs";
import uPlot from "../vendor/uPlot.esm.js";

const css = (name, fallback) =>
  getComputedStyle(document.documentElement).getPropertyValue(name).trim() || fallback;

export class PriceChart {
  constructor(container) {
    this.chart = createChart(container, {
      autoSize: true,
      layout: { background: { color: "transparent" }, textColor: css("--muted", "#5b6675") },
      grid: {
        vertLines: { color: css("--border", "#dde3ea") },
        horzLines: { color: css("--border", "#dde3ea") },
      },
      timeScale: { timeVisible: true, secondsVisible: false },
      rightPriceScale: { borderVisible: false },
    });
    this.series = this.chart.addSeries(CandlestickSeries, {
      upColor: "#1a7f37",
      downColor: "#cf222e",
      borderVisible: false,
      wickUpColor: "#1a7f37",
      wickDownColor: "#cf222e",
    });
    this.last = null;
  }

  // Candles from the REST API: [{start, open, high, low, close}], oldest first.
  load(candles) {
    const bars = candles.map((c) => ({
      time: Math.floor(Date.parse(c.start) / 1000),
      open: Number(c.open),
      high: Number(c.high),
      low: Number(c.low),
      close: Number(c.close),
    }));
    this.series.setData(bars);
    this.last = bars.length ? { ...bars[bars.length - 1] } : null;
    this.chart.timeScale().scrollToRealTime();
  }

  // A live trade updates the current minute's candle or opens the next one.
  trade(price, timeMs) {
    const value = Number(price);
    let minute = Math.floor(timeMs / 60000) * 60;
    if (this.last && minute < this.last.time) minute = this.last.time; // clocks disagree a little
    if (this.last && this.last.time === minute) {
      this.last.high = Math.max(this.last.high, value);
      this.last.low = Math.min(this.last.low, value);
      this.last.close = value;
    } else {
      this.last = { time: minute, open: value, high: value, low: value, close: value };
    }
    this.series.update({ ...this.last });
  }

  get empty() {
    return this.last === null;
  }
}

export class DepthChart {
  constructor(container) {
    this.container = container;
    // Bids: the total at a price holds up to it; asks: from it on.
    const bidSteps = uPlot.paths.stepped({ align: -1 });
    const askSteps = uPlot.paths.stepped({ align: 1 });
    this.plot = new uPlot(
      {
        width: container.clientWidth || 300,
        height: 220,
        legend: { show: false },
        cursor: { drag: { x: false, y: false } },
        scales: { x: { time: false } },
        axes: [
          { stroke: css("--muted", "#5b6675"), grid: { stroke: css("--border", "#dde3ea") } },
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
    new ResizeObserver(() => {
      this.plot.setSize({ width: container.clientWidth, height: 220 });
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
  }
}
