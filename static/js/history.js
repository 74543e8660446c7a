// The account's history: times in the viewer's zone, and the P&L curve (uPlot, whose time axis is
// in the viewer's zone too) from the series the server computed from the recorded fills.

import uPlot from "../vendor/uPlot.esm.js";
import { $, localizeTimes, money } from "./dom.js";

localizeTimes();

const css = (name, fallback) => getComputedStyle(document.documentElement).getPropertyValue(name).trim() || fallback;

const container = $("[data-pnl-chart]");
const HEIGHT = 260; // the plot's; the legend goes below it
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
  // Before the first fill the P&L was nothing: the curve starts at zero a minute before it.
  times.unshift(times[0] - 60);
  total.unshift(0);
  realized.unshift(0);
  // The curve moves at fills only: a step at each, flat between them.
  const steps = uPlot.paths.stepped({ align: 1 });
  const axis = { stroke: css("--muted", "#5b6675"), grid: { stroke: css("--border", "#dde3ea") } };
  const plot = new uPlot(
    {
      width: container.clientWidth || 600,
      height: HEIGHT,
      legend: { show: true },
      scales: { x: { time: true } },
      axes: [axis, { ...axis, size: 70, values: (u, values) => values.map((v) => money(v)) }],
      series: [
        {},
        { label: "P&L", stroke: css("--accent", "#1f6feb"), width: 2, paths: steps, value: (u, v) => (v === null ? "—" : money(v)) },
        { label: "Realized", stroke: css("--muted", "#5b6675"), width: 1, dash: [4, 4], paths: steps, value: (u, v) => (v === null ? "—" : money(v)) },
      ],
    },
    [times, total, realized],
    container,
  );
  new ResizeObserver(() => plot.setSize({ width: container.clientWidth, height: HEIGHT })).observe(container);
}
