"""FIX 4.4 order entry against the live stack (engine, recorder, bridge, the FIX process), with
real QuickFIX initiators as the clients."""

BUY, SELL = "1", "2"


def test_logon_with_a_token_and_a_wrong_token_is_refused_with_a_text(fix_stack):
    _, token = fix_stack.user()
    good = fix_stack.client("LOGON1", token)
    assert good.logged_on.is_set()

    bad = fix_stack.client("LOGON2", "not-a-token", start=False)
    bad.start(wait=False)
    assert bad.logged_out.wait(10)
    assert not bad.logged_on.is_set()
    assert bad.logout_text == "Invalid or revoked token."

    # A SenderCompID is its first account's: another account's token cannot take it over.
    _, other = fix_stack.user()
    good.stop()
    taken = fix_stack.client("LOGON1", other, start=False, store="LOGON1-other")
    taken.start(wait=False)
    assert taken.logged_out.wait(10)
    assert not taken.logged_on.is_set()
    assert "another account" in (taken.logout_text or "")


def test_a_revoked_token_ends_its_session(fix_stack):
    """The token is the session's authority: revoked, the session is logged out within seconds
    and cannot log on again with it."""
    _, token = fix_stack.user()
    client = fix_stack.client("REVOKE1", token)
    assert client.logged_on.is_set()
    fix_stack.stack.manage(
        "shell",
        "-c",
        "from exchange.models import ApiToken\n"
        "from exchange.selectors import api_token_digest\n"
        f"ApiToken.objects.filter(digest=api_token_digest({token!r})).delete()\n",
    )
    assert client.logged_out.wait(15), "the session outlived its token"
    assert client.logout_text == "Invalid or revoked token."
    client.stop()


def test_a_resting_order_then_cancel(fix_stack):
    _, token = fix_stack.user()
    symbol = fix_stack.symbol()
    client = fix_stack.client("REST1", token)
    client.new_order("r-1", symbol, BUY, "5", "99.50")
    new = client.report("r-1", "0")
    assert new[39] == "0" and new[55] == symbol and new[54] == BUY
    assert new[151] == "5" and new[14] == "0" and new[44] == "99.50"
    order_id = new[37]
    assert order_id.isdigit()

    client.send("F", (11, "r-1-cxl"), (41, "r-1"), (55, symbol), (54, BUY), (60, _now()))
    cancelled = client.report("r-1-cxl", "4")
    assert cancelled[41] == "r-1" and cancelled[37] == order_id
    assert cancelled[39] == "4" and cancelled[151] == "0"

    # A second cancel of the same order: the engine no longer has it.
    client.send("F", (11, "r-1-cxl2"), (41, "r-1"), (55, symbol), (54, BUY), (60, _now()))
    reject = client.expect(lambda m: m.type == "9" and m[11] == "r-1-cxl2", what="cancel reject")
    assert reject[434] == "1" and reject[41] == "r-1"


def test_a_cross_between_two_accounts_and_a_replace(fix_stack):
    _, maker_token = fix_stack.user()
    _, taker_token = fix_stack.user()
    symbol = fix_stack.symbol()
    maker = fix_stack.client("MAKER1", maker_token)
    taker = fix_stack.client("TAKER1", taker_token)

    maker.new_order("m-1", symbol, SELL, "10", "101.00")
    maker.report("m-1", "0")
    # Replace: a new price and a new total quantity; ClOrdID chains.
    maker.send(
        "G",
        (11, "m-1b"),
        (41, "m-1"),
        (55, symbol),
        (54, SELL),
        (60, _now()),
        (38, "8"),
        (40, "2"),
        (44, "100.50"),
    )
    replaced = maker.report("m-1b", "5")
    assert replaced[41] == "m-1" and replaced[44] == "100.50"
    assert replaced[38] == "8" and replaced[151] == "8" and replaced[39] == "0"

    taker.new_order("t-1", symbol, BUY, "3", "101.00")
    taker.report("t-1", "0")
    fill = taker.report("t-1", "F")
    assert fill[39] == "2" and fill[31] == "100.50" and fill[32] == "3"
    assert fill[14] == "3" and fill[151] == "0" and fill[6] == "100.5"

    partial = maker.report("m-1b", "F")
    assert partial[39] == "1" and partial[32] == "3" and partial[31] == "100.50"
    assert partial[14] == "3" and partial[151] == "5" and partial[38] == "8"

    # The rest of it, at a second price for the taker: the average is exact.
    taker.new_order("t-2", symbol, BUY, "5", "100.50")
    assert taker.report("t-2", "F")[39] == "2"
    done = maker.report("m-1b", "F")
    assert done[39] == "2" and done[14] == "8" and done[151] == "0" and done[6] == "100.5"

    # Status of a filled order.
    maker.send("H", (11, "m-1b"), (55, symbol), (54, SELL))
    status = maker.report("m-1b", "I")
    assert status[39] == "2" and status[14] == "8"


def test_rejects_from_the_gateway_and_from_the_engine(fix_stack):
    _, token = fix_stack.user()
    symbol = fix_stack.symbol()
    client = fix_stack.client("REJ1", token)

    # Off the tick grid: the gateway refuses it at once, nothing reaches the engine.
    client.new_order("x-1", symbol, BUY, "1", "100.001")
    rejected = client.report("x-1", "8")
    assert rejected[39] == "8" and rejected[103] == "99" and rejected[37] == "NONE"
    assert rejected[58].startswith("invalid")
    # An unknown symbol.
    client.new_order("x-2", "NOPE", BUY, "1", "100")
    rejected = client.report("x-2", "8")
    assert rejected[103] == "1" and rejected[58].startswith("unknown_symbol:")

    # Post-only that would cross: the engine's reject.
    client.new_order("x-3", symbol, SELL, "2", "100.00")
    client.report("x-3", "0")
    client.new_order("x-4", symbol, BUY, "1", "100.00", (18, "6"))
    rejected = client.report("x-4", "8")
    assert rejected[58] == "POST_ONLY_WOULD_CROSS" and rejected[37].isdigit()

    # An IOC that finds nothing expires.
    client.new_order("x-5", symbol, BUY, "1", "99.00", (59, "3"))
    client.report("x-5", "0")
    expired = client.report("x-5", "C")
    assert expired[39] == "C" and expired[58] == "REMAINDER"

    # Mass cancel: the resting sell goes.
    client.send("q", (11, "mass-1"), (530, "1"), (55, symbol), (60, _now()))
    report = client.expect(lambda m: m.type == "r", what="mass cancel report")
    # The gateway counts the cancels it sent: orders only the journal has yet are among them.
    assert report[531] == "1" and int(report[533]) >= 1
    assert client.report("x-3", "4")[39] == "4"


def _now() -> str:
    import time

    return time.strftime("%Y%m%d-%H:%M:%S", time.gmtime())
