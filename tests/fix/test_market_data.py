"""FIX market data: MarketDataRequest → a full refresh, then incremental refreshes from the
bridge's frames (book levels new/changed/deleted, trades)."""

import json
import time

from exchange.protocol.keys import key

BUY, SELL = "1", "2"


def _entries(message):
    """(MDUpdateAction or None, MDEntryType, price, size) of each group entry, in order."""
    entries, current = [], None
    for tag, value in message.pairs:
        if tag in (279, 269) and (current is None or tag in current):
            current = {}
            entries.append(current)
        if current is not None and tag in (279, 269, 270, 271):
            current[tag] = value
    return [(e.get(279), e.get(269), e.get(270), e.get(271)) for e in entries]


def test_snapshot_then_incremental_refreshes(fix_stack):
    _, token = fix_stack.user()
    _, other_token = fix_stack.user()
    symbol = fix_stack.symbol()
    trader = fix_stack.client("MDT1", token)
    trader.new_order("md-1", symbol, BUY, "5", "99.00")
    trader.report("md-1", "0")
    # The bridge keeps the snapshot of a market nobody watches at most about 1.5 s old (its
    # event streams read every 0.5 s, its frames once a second): wait until it has the bid.
    snapshot_key = key("ws", symbol, prefix=fix_stack.stack.prefix)
    deadline = time.monotonic() + 10
    while ["99.00", "5"] not in json.loads(fix_stack.redis.get(snapshot_key) or "{}").get(
        "bids", []
    ):
        assert time.monotonic() < deadline, "the bridge's snapshot never showed the bid"
        time.sleep(0.1)

    watcher = fix_stack.client("MDW1", other_token)
    watcher.send(
        "V",
        (262, "req-1"),
        (263, "1"),
        (264, "0"),
        (265, "1"),
        groups=[
            (267, [(269, [(269, "0")]), (269, [(269, "1")]), (269, [(269, "2")])]),
            (146, [(55, [(55, symbol)])]),
        ],
    )
    snapshot = watcher.expect(lambda m: m.type == "W", what="full refresh")
    assert snapshot[262] == "req-1" and snapshot[55] == symbol
    assert (None, "0", "99.00", "5") in _entries(snapshot)

    trader.new_order("md-2", symbol, SELL, "3", "101.00")  # a new ask level
    trader.new_order("md-3", symbol, BUY, "2", "99.00")  # the bid level grows
    seen = []
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not (
        ("0", "1", "101.00", "3") in seen and ("1", "0", "99.00", "7") in seen
    ):
        seen += _entries(watcher.expect(lambda m: m.type == "X", what="incremental refresh"))
    assert ("0", "1", "101.00", "3") in seen and ("1", "0", "99.00", "7") in seen

    # A trade: the ask level goes, the trade is reported.
    _, third = fix_stack.user()
    taker = fix_stack.client("MDT2", third)
    taker.new_order("md-4", symbol, BUY, "3", "101.00")
    seen = []
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not (
        ("0", "2", "101.00", "3") in seen and ("2", "1", "101.00", "3") in seen
    ):
        seen += _entries(watcher.expect(lambda m: m.type == "X", what="incremental refresh"))
    assert ("0", "2", "101.00", "3") in seen and ("2", "1", "101.00", "3") in seen

    # An unknown symbol is refused.
    watcher.send(
        "V",
        (262, "req-2"),
        (263, "0"),
        (264, "1"),
        groups=[(267, [(269, [(269, "0")])]), (146, [(55, [(55, "NOPE")])])],
    )
    reject = watcher.expect(lambda m: m.type == "Y", what="market data reject")
    assert reject[262] == "req-2" and "NOPE" in reject[58]
