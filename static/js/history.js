// The account's history: times in the viewer's zone, and the P&L curve (uPlot, whose time axis is
// in the viewer's zone too) from the series the server computed from the recorded fills.

import uPlot from "../vendor/uPlot.esm.js";
import { $, localizeTimes, money } from "./dom.js";

localizeTimes();

const css = (name, fallback) => getComputedStyle(document.documentElement).getPropertyValue(name).trim() || fallback;

const container = $("[data-pnl-chart]");
const series = JSON.parse(document.getElementById("pnl-series").textContent);
if (container && series.length) {
  // One point a second at most (the last of that second): fills of one instant are one step.
  const times = [];
  const total = [];
  const realized = [];
  for (const point of series) {
    const t = Math.floor(point.t);
    if (times.length && times[times.length - 1] === t) {
      total[total.length - 1] = Number(point.pnl);
      realized[realized.length - 1] = Number(point.realized);
    } else {
      times.push(t);
      total.push(Number(point.pnl));
      realized.push(Number(point.realized));
    }
  }
  if (times.length === 1) {
    // A single fill: a flat line from a minute before, so there is a curve to see.
    times.unshift(times[0] - 60);
    total.unshift(0);
    realized.unshift(0);
  }
  const axis = { stroke: css("--muted", "#5b6675"), grid: { stroke: css("--border", "#dde3ea") } };
  const plot = new uPlot(
    {
      width: container.clientWidth || 600,
      height: container.clientHeight || 280,
      legend: { show: true },
      scales: { x: { time: true } },
      axes: [axis, { ...axis, size: 70, values: (u, values) => values.map((v) => money(v)) }],
      series: [
        {},
        { label: "P&L", stroke: css("--accent", "#1f6feb"), width: 2, value: (u, v) => (v === null ? "—" : money(v)) },
        { label: "Realized", stroke: css("--muted", "#5b6675"), width: 1, dash: [4, 4], value: (u, v) => (v === null ? "—" : money(v)) },
      ],
    },
    [times, total, realized],
    container,
  );
  new ResizeObserver(() => plot.setSize({ width: container.clientWidth, height: container.clientHeight || 280 })).observe(container);
}
