"""The live market in the browser: the `bridge` (the one fan-out of engine events and market data
to browsers, through the Channels layer), each symbol's `market_state` (books, tape, stats and
the frames made from them; no I/O), and the WebSocket `consumers` (thin relays) with their
`routing`."""
