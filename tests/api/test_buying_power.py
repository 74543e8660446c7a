"""Buying power: a buy whose worst-case cost is above the account's available cash (cash minus what
its open buy orders reserve) is refused `insufficient_funds`, checked and reserved in the append
script (`exchange.orders.funds`). Real Redis under the test's prefix; the engine and the recorder
where the test says so (the engine as `run_engine` in a subprocess, the recorder in process)."""

import asyncio
import json
import time
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from types import SimpleNamespace

import pytest
import redis
from asgiref.sync import async_to_sync

from exchange.models import Account, Instrument, Order
from exchange.orders import funds, gateway, journal, rules
from exchange.orders.rules import OrderRequest
from exchange.protocol import keys
from exchange.recorder import Recorder
from exchange.services import account_for_user, accounts_reset

from .support import assert_error, journal_length, make_instrument

UNIT = rules.FUNDS_UNIT


def buy(price: str, quantity: str, **extra) -> dict:
    return {"symbol": "ACME", "side": "buy", "price": price, "quantity": quantity, **extra}


def available(account) -> Decimal:
    state = funds.read(account.pk)
    assert state is not None
    return state.available


def set_band(symbol: str, low: int, high: int) -> None:
    """The engine's published price band, as its book key carries it."""
    book = {"symbol": symbol, "seq": 0, "halted": False, "ts_ms": 0, "band": [low, high]}
    journal.client().set(keys.key("book", symbol), json.dumps(book))


# --- the cost ------------------------------------------------------------------------------------


def test_the_worst_case_cost_is_price_times_quantity_plus_the_worst_fee_rounded_up(db):
    plain = make_instrument(served=False)
    assert rules.order_cost_units(plain, 10_000, 3) == 300 * 10**8  # 3 at 100.00
    # Fees plug in as instrument fields (basis points); a maker rebate is never a cost.
    fees = SimpleNamespace(
        tick_size=Decimal("0.01"), lot_size=Decimal("1"), taker_fee_bps=10, maker_fee_bps=-2
    )
    assert rules.worst_fee_bps(fees) == 10
    # 300.30, and half a cent a lot for the fee's rounding (each fill's fee is rounded to the cent).
    assert rules.order_cost_units(fees, 10_000, 3) == Decimal("300.315") / UNIT
    # Below the unit: rounded up, never down.
    tiny = SimpleNamespace(
        tick_size=Decimal("0.00000001"), lot_size=Decimal("0.1"), taker_fee_bps=0, maker_fee_bps=0
    )
    assert rules.order_cost_units(tiny, 1, 1) == 1
    # Beyond what any funds state holds: above every capped cash.
    assert rules.order_cost_units(plain, 2**53 - 1, 2**40 - 1) == rules.FUNDS_MAX + 1


# --- through the API, no engine ---------------------------------------------------------------


@pytest.mark.django_db
def test_a_buy_beyond_the_available_cash_is_refused_and_nothing_is_written(
    api, alice, redis_client
):
    make_instrument()
    account = account_for_user(alice)
    assert account.cash == Decimal("100000")

    first = api.post("/api/v1/orders/", buy("100.00", "600", client_order_id="a"), format="json")
    assert first.status_code == 202, first.json()
    assert available(account) == Decimal("40000")  # 60,000 reserved by the resting buy

    refused = api.post("/api/v1/orders/", buy("100.00", "500"), format="json")
    error = assert_error(refused, 422, "insufficient_funds", "quantity")
    assert "needs 50000 " in error["message"]
    assert "has 40000 available" in error["message"]
    assert journal_length(redis_client, "ACME") == 1
    assert Order.objects.count() == 0

    # A sell reserves nothing (short selling is the engine's position limit's).
    sell = api.post("/api/v1/orders/", {**buy("100.00", "5000"), "side": "sell"}, format="json")
    assert sell.status_code == 202
    # What is left fits exactly.
    assert api.post("/api/v1/orders/", buy("100.00", "400"), format="json").status_code == 202
    assert available(account) == 0
    # A retry of an order placed is answered with it, whatever the cash says now.
    again = api.post("/api/v1/orders/", buy("100.00", "600", client_order_id="a"), format="json")
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    assert journal_length(redis_client, "ACME") == 3


@pytest.mark.django_db
def test_a_market_buy_is_valued_at_the_bands_upper_limit(api, alice, redis_client):
    make_instrument()
    account = account_for_user(alice)
    Account.objects.filter(pk=account.pk).update(cash=Decimal("1000"))
    market = {"symbol": "ACME", "side": "buy", "type": "market", "quantity": "10"}

    # No band published: a market buy cannot be valued.
    assert_error(api.post("/api/v1/orders/", market, format="json"), 409, "no_price_band", "type")

    set_band("ACME", 9_000, 11_000)  # 90.00 to 110.00
    # 10 at the band's 110: 1,100 > 1,000, whatever the book's asks are.
    refused = api.post("/api/v1/orders/", market, format="json")
    error = assert_error(refused, 422, "insufficient_funds")
    assert "needs 1100 " in error["message"]
    assert "has 1000 available" in error["message"]
    placed = api.post("/api/v1/orders/", {**market, "quantity": "9"}, format="json")
    assert placed.status_code == 202, placed.json()
    assert available(account) == Decimal("10")  # 9 x 110 held until the engine answers
    assert journal_length(redis_client, "ACME") == 1


@pytest.mark.django_db
def test_a_replace_raising_the_cost_must_be_covered(api, alice, redis_client):
    make_instrument()
    account = account_for_user(alice)
    Account.objects.filter(pk=account.pk).update(cash=Decimal("10000"))
    order = api.post("/api/v1/orders/", buy("100.00", "50"), format="json").json()
    assert available(account) == Decimal("5000")

    # 50 at 150 = 7,500: held in full beside the order's 5,000 until the engine answers.
    raised = api.post(f"/api/v1/orders/{order['id']}/replace", {"price": "150.00"}, format="json")
    error = assert_error(raised, 422, "insufficient_funds")
    assert "needs 7500 " in error["message"]
    assert journal_length(redis_client, "ACME") == 1  # nothing written

    lowered = api.post(
        f"/api/v1/orders/{order['id']}/replace",
        {"price": "100.00", "quantity": "40"},
        format="json",
    )
    assert lowered.status_code == 202, lowered.json()
    assert available(account) == Decimal("1000")  # 5,000 + 4,000 in flight
    assert funds.read(account.pk).replace_holds == {order["id"]: [4000 * 10**8]}
    assert journal_length(redis_client, "ACME") == 2

    # A sell's replace holds nothing.
    sell = api.post(
        "/api/v1/orders/", {**buy("200.00", "10"), "side": "sell"}, format="json"
    ).json()
    assert (
        api.post(
            f"/api/v1/orders/{sell['id']}/replace", {"quantity": "1000"}, format="json"
        ).status_code
        == 202
    )
    assert available(account) == Decimal("1000")


# --- bursts ------------------------------------------------------------------------------------


def _burst_requests(count: int) -> list[OrderRequest]:
    # Two symbols: the check is one per account, whatever the symbol.
    return [
        OrderRequest(
            symbol="ACME" if i % 2 else "BETA",
            side="buy",
            quantity=Decimal(3),
            price=Decimal("100.00"),
        )
        for i in range(count)
    ]


def _assert_burst_fits(account, outcomes, redis_client) -> None:
    placed = [o for o in outcomes if not isinstance(o, Exception)]
    refused = [o for o in outcomes if isinstance(o, Exception)]
    assert all(getattr(o, "code", None) == "insufficient_funds" for o in refused), refused
    # 50 buys of 300 against 10,000 of cash: exactly 33 fit (9,900), the rest are refused.
    assert len(placed) == 33 and len(refused) == 17
    instruments = {i.symbol: i for i in Instrument.objects.all()}
    reserved = sum(
        rules.order_cost_units(
            instruments[o.record.symbol], o.record.price_ticks, o.record.quantity_lots
        )
        for o in placed
    )
    assert reserved * UNIT <= account.cash
    state = funds.read(account.pk)
    assert state.held == reserved * UNIT
    assert state.available == Decimal(100)
    assert journal_length(redis_client, "ACME") + journal_length(redis_client, "BETA") == 33


@pytest.mark.django_db
def test_fifty_concurrent_buys_never_spend_more_than_the_cash(alice, redis_client):
    make_instrument("ACME")
    make_instrument("BETA")
    Account.objects.filter(pk=account_for_user(alice).pk).update(cash=Decimal("10000"))
    account = Account.objects.get(pk=account_for_user(alice).pk)

    async def burst():
        return await asyncio.gather(
            *(gateway.order_submit(account=account, request=r) for r in _burst_requests(50)),
            return_exceptions=True,
        )

    outcomes = async_to_sync(burst)()
    _assert_burst_fits(account, outcomes, redis_client)


@pytest.mark.django_db
def test_fifty_buys_from_many_connections_never_spend_more_than_the_cash(alice, redis_client):
    """As from many processes: ten threads, each with an event loop and Redis connections of its
    own, append five buys each at once (the gateway's caches serve one event loop at a time, so
    the threads call the append script as the gateway does, with the NEWs it builds)."""
    instruments = {s: make_instrument(s) for s in ("ACME", "BETA")}
    Account.objects.filter(pk=account_for_user(alice).pk).update(cash=Decimal("10000"))
    account = Account.objects.get(pk=account_for_user(alice).pk)
    assert funds.bootstrap(account.pk)
    requests = _burst_requests(50)

    def new(request: OrderRequest) -> tuple[str, journal.NewEntry]:
        instrument = instruments[request.symbol]
        fields = rules.new_fields(request, instrument, account)
        cost = rules.order_cost_units(instrument, fields["px"], fields["qty"])
        record = journal.PendingRecord(
            0,
            account.pk,
            request.symbol,
            "buy",
            "limit",
            "gtc",
            fields["px"],
            fields["qty"],
            False,
            0,
            rules.client_order_id(None)[0],
        )
        return request.symbol, journal.NewEntry(
            account.pk, fields, None, record, journal.hold_limit(cost)
        )

    async def five(batch):
        try:
            return await asyncio.gather(
                *(journal.aappend_new(*new(r)) for r in batch), return_exceptions=True
            )
        finally:
            await journal.aclose_loop()

    with ThreadPoolExecutor(max_workers=10) as pool:
        results = pool.map(
            lambda batch: asyncio.run(five(batch)), [requests[i::10] for i in range(10)]
        )
        outcomes = [o for batch in results for o in batch]
    placed = [o for o in outcomes if isinstance(o, int)]
    refused = [o for o in outcomes if not isinstance(o, int)]
    assert all(isinstance(o, journal.FundsShort) for o in refused), refused
    assert len(placed) == 33 and len(refused) == 17
    state = funds.read(account.pk)
    assert state.held == 33 * 300 and state.held <= account.cash
    assert sorted(state.reservations) == sorted(placed)
    assert journal_length(redis_client, "ACME") + journal_length(redis_client, "BETA") == 33


# --- the state's life: bootstrap, reset, replay --------------------------------------------------


@pytest.mark.django_db
def test_a_missing_state_is_built_from_the_database(alice, redis_client):
    instrument = make_instrument()
    account = account_for_user(alice)
    # A recorded resting buy (10 left of 15 at 100) and one only the journal has yet (2 at 99).
    Order.objects.create(
        instrument=instrument,
        account=account,
        order_id=7,
        client_order_id="old",
        side="buy",
        order_type="limit",
        time_in_force="gtc",
        price=Decimal("100"),
        quantity=Decimal("15"),
        filled_quantity=Decimal("5"),
        status="PARTIALLY_FILLED",
    )
    redis_client.hset(
        keys.pending_key(account.pk), "9", "ACME buy limit gtc 9900 2 0 0 pending-one"
    )
    assert funds.bootstrap(account.pk) is True
    assert funds.bootstrap(account.pk) is False  # built once
    state = funds.read(account.pk)
    assert state.cash == Decimal("100000")
    assert state.reservations == {7: 1000 * 10**8, 9: 198 * 10**8}
    assert state.available == Decimal("100000") - 1000 - 198


@pytest.mark.django_db(transaction=True)
def test_a_reset_rebuilds_the_state_with_the_reset_cash(alice, api):
    make_instrument()
    account = account_for_user(alice)
    assert api.post("/api/v1/orders/", buy("100.00", "10"), format="json").status_code == 202
    Account.objects.filter(pk=account.pk).update(cash=Decimal("5"), initial_cash=Decimal("2000"))
    accounts_reset()
    assert funds.read(account.pk) is None  # forgotten after the commit
    assert api.post("/api/v1/orders/", buy("100.00", "30"), format="json").status_code == 422
    # (the pending buy of 10 at 100 is still reserved: the recorder has not seen it end)
    assert available(account) == Decimal("1000")


def test_a_batch_is_applied_once_per_account(settings, redis_prefix):
    """A callback run twice (a redelivery, two recorders) changes nothing the second time."""
    client = journal.client()
    key = keys.funds_key(1)
    client.hset(key, mapping={"cash": 1000, "held": 300, "r:5": 300, "s:ACME": 10})
    batch = {1: funds.AccountBatch(cash=-100, ops=[("R", 5, 100)])}
    funds.apply_batch("ACME", 10, batch)  # already seen: skipped
    assert client.hget(key, "cash") == b"1000"
    funds.apply_batch("ACME", 11, batch)
    funds.apply_batch("ACME", 11, batch)
    funds.apply_batch("ACME", 11, batch)
    state = funds.read(1)
    assert (state.cash, state.held, state.reservations) == (900 * UNIT, 200 * UNIT, {5: 200})
    # Another symbol's sequence is its own.
    funds.apply_batch("BETA", 3, {1: funds.AccountBatch(cash=50)})
    assert funds.read(1).cash == 950 * UNIT
    # A release never goes below zero; a release-all empties the reservation.
    funds.apply_batch("ACME", 12, {1: funds.AccountBatch(ops=[("R", 5, 10**6), ("A", 6, 0)])})
    state = funds.read(1)
    assert (state.held, state.reservations) == (0, {})
    # An account without a state is left alone (its bootstrap reads the database).
    funds.apply_batch("ACME", 13, {2: funds.AccountBatch(cash=5)})
    assert not client.exists(keys.funds_key(2))


# --- with the engine and the recorder ----------------------------------------------------------


def _record() -> None:
    """Waits for the engine to drain the journal, then records every event."""
    client = journal.client()
    deadline = time.monotonic() + 20
    while True:
        last = client.xrevrange(keys.key("cmd", "ACME"), count=1)
        status = client.hget(keys.key("status", "ACME"), "jid")
        if not last or (status is not None and status.decode() == last[0][0].decode()):
            break
        assert time.monotonic() < deadline, "the engine did not drain the journal"
        time.sleep(0.05)
    Recorder(["ACME"]).run(until_idle=True)


def _assert_matches_database(account) -> None:
    """Redis's cash is the database's, to the unit; held is what the open buys reserve."""
    account.refresh_from_db()
    state = funds.read(account.pk)
    assert state.cash == account.cash
    instrument = None
    reserved = 0
    for order in Order.objects.filter(
        account=account, side="buy", status__in=["NEW", "PARTIALLY_FILLED"]
    ):
        instrument = instrument or order.instrument
        reserved += rules.order_cost_units(
            instrument,
            instrument.price_to_ticks(order.price),
            instrument.qty_to_lots(order.quantity - order.filled_quantity),
        )
    assert state.held == reserved * UNIT, (state, reserved)


@pytest.mark.django_db(transaction=True)
def test_resting_buys_cancels_fills_and_replaces_move_the_buying_power(
    engine, api, bob_api, alice, bob
):
    make_instrument(served=False)  # the engine writes the status hash
    deadline = time.monotonic() + 20
    while not journal.client().exists(keys.key("status", "ACME")):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    account = account_for_user(alice)

    resting = api.post("/api/v1/orders/", buy("100.00", "100", wait=True), format="json").json()
    assert resting["status"] == "NEW"
    assert available(account) == Decimal("90000")
    # A cancel gives it back (once the engine has cancelled and the recorder recorded it).
    assert api.post(f"/api/v1/orders/{resting['id']}/cancel").status_code == 200
    _record()
    assert available(account) == Decimal("100000")
    _assert_matches_database(account)

    # A fill moves its part of the reservation out of cash: 40 of 100 at 100.
    resting = api.post("/api/v1/orders/", buy("100.00", "100", wait=True), format="json").json()
    sold = bob_api.post(
        "/api/v1/orders/", {**buy("100.00", "40", wait=True), "side": "sell"}, format="json"
    ).json()
    assert sold["status"] == "FILLED"
    _record()
    state = funds.read(account.pk)
    assert state.cash == Decimal("96000")
    assert state.held == Decimal("6000")
    _assert_matches_database(account)

    # A taker buy above the ask: reserved at its limit (105), paid at the ask (101).
    bob_api.post("/api/v1/orders/", {**buy("101.00", "10"), "side": "sell"}, format="json")
    taker = api.post("/api/v1/orders/", buy("105.00", "10", wait=True), format="json").json()
    assert taker["status"] == "FILLED"
    _record()
    state = funds.read(account.pk)
    assert state.cash == Decimal("96000") - 1010
    assert state.held == Decimal("6000")
    _assert_matches_database(account)

    # A replace holds its new cost in full until the engine answers, then it is the order's.
    replaced = api.post(
        f"/api/v1/orders/{resting['id']}/replace",
        {"price": "99.00", "quantity": "50"},
        format="json",
    )
    assert replaced.status_code == 200  # the engine answered; the recorder has not run
    assert funds.read(account.pk).held == Decimal("6000") + 4950
    _record()
    state = funds.read(account.pk)
    assert state.held == Decimal("4950")
    assert state.replace_holds == {}
    _assert_matches_database(account)
    # A replace the engine refuses (the order is gone) gives its hold back.
    assert api.post(f"/api/v1/orders/{resting['id']}/cancel").status_code == 200
    _record()
    gone = Order.objects.get(order_id=resting["id"])
    late = journal.PendingRecord(
        order_id=gone.order_id,
        account_id=account.pk,
        symbol="ACME",
        side="buy",
        order_type="limit",
        time_in_force="gtc",
        price_ticks=9900,
        quantity_lots=50,
        post_only=False,
        created_ms=0,
        client_order_id="late",
    )
    gateway.blocking(gateway.order_replace)(account=account, order=late, price=Decimal("98"))
    assert funds.read(account.pk).held == Decimal("4900")
    _record()
    assert funds.read(account.pk).held == 0
    _assert_matches_database(account)


@pytest.mark.django_db(transaction=True)
def test_a_lost_update_leaves_less_buying_power_never_more(
    engine, api, bob_api, alice, monkeypatch
):
    """A recorder that dies between its commit and the funds update loses that update: the
    holds stay with the cash, and a hold is never below the money it stands for."""
    make_instrument(served=False)
    deadline = time.monotonic() + 20
    while not journal.client().exists(keys.key("status", "ACME")):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    account = account_for_user(alice)
    bob_api.post(
        "/api/v1/orders/", {**buy("99.00", "30", wait=True), "side": "sell"}, format="json"
    )
    api.post("/api/v1/orders/", buy("100.00", "50", wait=True), format="json")  # 30 at 99

    def crash(*args):
        raise redis.ConnectionError("the recorder died")

    monkeypatch.setattr(funds, "apply_batch", crash)
    _record()
    monkeypatch.undo()
    account.refresh_from_db()
    state = funds.read(account.pk)
    truth = account.cash - 20 * 100  # the database's cash minus the 20 left at 100
    assert account.cash == Decimal("100000") - 2970
    assert state.available < truth
    # Later batches still apply, and never hand the lost money back.
    api.post(f"/api/v1/orders/{Order.objects.get(account=account).order_id}/cancel")
    _record()
    assert funds.read(account.pk).available <= account.cash


@pytest.mark.django_db
def test_the_instruments_fees_count_in_the_cost(api, alice, redis_client):
    make_instrument(taker_fee_bps=10, maker_fee_bps=-2)
    account = account_for_user(alice)
    account.cash = Decimal("1000.00")
    account.save(update_fields=["cash"])
    # 10 at 100.00 is 1000.00, but the taker fee (1.00, and its rounding) is not covered.
    response = api.post("/api/v1/orders/", buy("100.00", "10"), format="json")
    assert_error(response, 422, "insufficient_funds")
    response = api.post("/api/v1/orders/", buy("99.00", "10"), format="json")
    assert response.status_code in (201, 202), response.content
    assert available(account) == Decimal("1000.00") - Decimal("990.00") - Decimal("0.99") - Decimal(
        "0.05"
    )
