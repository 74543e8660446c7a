import assert from "node:assert/strict";
import { test } from "node:test";

import { steadyOrder } from "../../static/js/leaderboard.js";

const rows = (pairs) => pairs.map(([name, equity]) => ({ name, equity: String(equity) }));
const names = (list) => list.map((row) => row.name);

test("the first frame is ordered by equity, best first", () => {
  assert.deepEqual(names(steadyOrder([], rows([["a", 100], ["b", 300], ["c", 200]]))), ["b", "c", "a"]);
});

test("rows do not swap for a tick's worth of equity", () => {
  const shown = ["a", "b"];
  // b is ahead by 0.01 on 1,000,000: noise, not a new ranking.
  assert.deepEqual(names(steadyOrder(shown, rows([["a", 1000000], ["b", 1000000.01]]))), ["a", "b"]);
});

test("a row that is clearly ahead moves up, past every row it beats", () => {
  const shown = ["a", "b", "c"];
  const next = steadyOrder(shown, rows([["a", 1000], ["b", 990], ["c", 5000]]));
  assert.deepEqual(names(next), ["c", "a", "b"]);
});

test("new agents come in at their place; gone ones leave", () => {
  const next = steadyOrder(["a", "b", "x"], rows([["a", 300], ["b", 100], ["n", 200]]));
  assert.deepEqual(names(next), ["a", "n", "b"]);
});
