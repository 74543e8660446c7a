// A WebSocket that reconnects with exponential back-off (and jitter) and reports its state.

const CLOSE_REFUSED = new Set([4401, 4403, 4404]);
const MAX_DELAY_MS = 15000;

export class LiveSocket {
  constructor(path, { onMessage, onOpen, onState } = {}) {
    this.path = path;
    this.onMessage = onMessage || (() => {});
    this.onOpen = onOpen || (() => {});
    this.onState = onState || (() => {});
    this.attempts = 0;
    this.ws = null;
    this.stopped = false;
    window.addEventListener("online", () => this.reconnectNow());
  }

  url() {
    const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
    return `${scheme}//${window.location.host}${this.path}`;
  }

  connect() {
    this.onState(this.attempts ? "reconnecting" : "connecting");
    const ws = new WebSocket(this.url());
    this.ws = ws;
    ws.addEventListener("open", () => {
      this.attempts = 0;
      this.onState("live");
      this.onOpen();
    });
    ws.addEventListener("message", (event) => {
      let frame;
      try {
        frame = JSON.parse(event.data);
      } catch {
        return;
      }
      this.onMessage(frame);
    });
    ws.addEventListener("close", (event) => {
      if (this.ws !== ws || this.stopped) return;
      if (CLOSE_REFUSED.has(event.code)) {
        this.onState("refused");
        return;
      }
      this.attempts += 1;
      const delay = Math.min(MAX_DELAY_MS, 500 * 2 ** (this.attempts - 1));
      this.onState("reconnecting");
      this.timer = setTimeout(() => this.connect(), delay * (0.5 + Math.random() / 2));
    });
    return this;
  }

  reconnectNow() {
    if (this.stopped || (this.ws && this.ws.readyState <= WebSocket.OPEN)) return;
    clearTimeout(this.timer);
    this.connect();
  }

  send(message) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(message));
  }
}

// The connection indicator in the market bar: the worst state of the page's sockets.
const RANK = { live: 0, connecting: 1, reconnecting: 2, refused: 3 };
const LABEL = {
  live: "Live",
  connecting: "Connecting…",
  reconnecting: "Reconnecting…",
  refused: "Not allowed",
};

export class ConnectionIndicator {
  constructor(node) {
    this.node = node;
    this.states = {};
  }

  track(name) {
    return (state) => {
      this.states[name] = state;
      const worst = Object.values(this.states).sort((a, b) => RANK[b] - RANK[a])[0];
      if (!this.node) return;
      this.node.dataset.connection = worst;
      this.node.querySelector("[data-connection-text]").textContent = LABEL[worst];
    };
  }
}
