// The leaderboard's row order: best equity first, but steady. Agents whose equity is about the
// same would swap places with every frame as their marks move by a tick; a row only passes the
// one above it when it is ahead by more than `margin` (a share of the larger equity), so rows
// move when the ranking changes, not for noise.

export const MARGIN = 0.001; // 0.1 % of equity

export function steadyOrder(previous, rows, margin = MARGIN) {
  const byName = new Map(rows.map((row) => [row.name, row]));
  // Rows already shown keep their places to start with; new ones come in by equity.
  const known = previous.filter((name) => byName.has(name)).map((name) => byName.get(name));
  const fresh = rows.filter((row) => !previous.includes(row.name)).sort((a, b) => Number(b.equity) - Number(a.equity));
  const order = [...known];
  for (const row of fresh) {
    const at = order.findIndex((other) => Number(row.equity) > Number(other.equity));
    order.splice(at < 0 ? order.length : at, 0, row);
  }
  // Insertion sort with a margin: a row moves up past each neighbour it clearly beats.
  for (let i = 1; i < order.length; i += 1) {
    let j = i;
    while (j > 0 && ahead(order[j], order[j - 1], margin)) {
      [order[j - 1], order[j]] = [order[j], order[j - 1]];
      j -= 1;
    }
  }
  return order;
}

function ahead(row, above, margin) {
  const a = Number(row.equity);
  const b = Number(above.equity);
  return a - b > margin * Math.max(Math.abs(a), Math.abs(b), 1);
}
