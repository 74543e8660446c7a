// One symbol's market data over /ws/market/{SYM}/: a snapshot first, then frames whose `prev`
// must be the `seq` of the frame before. Anything else is a gap: ask for a new snapshot.

import { places, price } from "./dom.js";
import { LiveSocket } from "./socket.js";

export class MarketFeed {
  constructor(symbol, handlers, onState) {
    this.symbol = symbol;
    this.handlers = handlers;
    this.seq = null;
    this.socket = new LiveSocket(`/ws/market/${encodeURIComponent(symbol)}/`, {
      onMessage: (frame) => this.receive(frame),
      onOpen: () => {
        this.seq = null; // a new connection starts with a new snapshot
      },
      onState,
    });
  }

  start() {
    this.socket.connect();
    return this;
  }

  receive(frame) {
    if (frame.type === "snapshot") {
      this.seq = frame.seq;
      this.handlers.snapshot?.(frame);
      return;
    }
    if (this.seq === null) return; // waiting for the snapshot
    if (frame.prev === this.seq) {
      this.seq = frame.seq;
      this.handlers[frame.type]?.(frame);
    } else if (frame.seq > this.seq) {
      this.seq = null;
      this.socket.send({ type: "resync" });
    }
  }
}

// Best bid and offer, spread and last price from a book (decimal strings, best first), to the
// tick's `decimals` when given.
export function renderBbo(root, bids, asks, lastPrice, decimals) {
  const bid = bids[0];
  const ask = asks[0];
  const set = (name, value) => {
    const node = root.querySelector(`[data-bbo="${name}"]`);
    if (node) node.textContent = value ?? "—";
  };
  set("bid", bid ? price(bid[0], decimals) : null);
  set("bid-qty", bid ? `× ${bid[1]}` : "");
  set("ask", ask ? price(ask[0], decimals) : null);
  set("ask-qty", ask ? `× ${ask[1]}` : "");
  if (bid && ask) {
    const shown = decimals ?? Math.max(places(bid[0]), places(ask[0]));
    set("spread", (Number(ask[0]) - Number(bid[0])).toFixed(shown));
  } else {
    set("spread", null);
  }
  if (lastPrice !== undefined && lastPrice !== null) set("last", price(lastPrice, decimals));
}

export function mid(bids, asks) {
  if (!bids.length || !asks.length) return null;
  return (Number(bids[0][0]) + Number(asks[0][0])) / 2;
}
