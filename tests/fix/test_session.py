"""The FIX session layer (QuickFIX's): executions while a client is away are stored and resent
when it logs on again, and sequence numbers survive a restart of the FIX process."""

import time

BUY, SELL = "1", "2"


def _now() -> str:
    return time.strftime("%Y%m%d-%H:%M:%S", time.gmtime())


def test_a_fill_while_disconnected_is_resent_after_reconnecting(fix_stack):
    _, maker_token = fix_stack.user()
    _, taker_token = fix_stack.user()
    symbol = fix_stack.symbol()
    maker = fix_stack.client("AWAY1", maker_token)
    maker.new_order("a-1", symbol, SELL, "4", "100.00")
    maker.report("a-1", "0")
    maker.stop()  # logs out: the order rests

    taker = fix_stack.client("AWAY2", taker_token)
    taker.new_order("b-1", symbol, BUY, "4", "100.00")
    assert taker.report("b-1", "F")[39] == "2"

    # The maker comes back with its own store: its engine sees the acceptor's sequence number
    # ahead of what it has, asks for a resend and receives the fill as a possible duplicate.
    back = fix_stack.client("AWAY1", maker_token)
    fill = back.report("a-1", "F")
    assert fill[39] == "2" and fill[32] == "4" and fill.get(43) == "Y"

    # The FIX process restarts: the sessions' sequence numbers carry on from its store.
    back.stop()
    before = int(fill[34])
    fix_stack.restart_fix()
    again = fix_stack.client("AWAY1", maker_token)
    again.send("H", (11, "a-1"), (55, symbol), (54, SELL))
    status = again.expect(lambda m: m.type == "8" and m.get(150) == "I", what="status")
    assert int(status[34]) > before + 1  # after the fill, a logout and a logon: not from 1
    # After a restart the order is found in the exchange's records.
    assert status[39] == "2" and status[14] == "4"


def test_executions_still_arrive_after_a_quiet_spell(fix_stack):
    """The FIX process's channel is read with a blocking pop that times out while nothing
    comes (channels-redis, every 5 s): a session quiet for longer still gets its reports."""
    _, token = fix_stack.user()
    symbol = fix_stack.symbol()
    client = fix_stack.client("QUIET1", token)
    time.sleep(6)
    client.new_order("q-1", symbol, BUY, "1", "90.00")
    assert client.report("q-1", "0")[39] == "0"
