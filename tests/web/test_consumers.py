"""The WebSocket consumers with the real bridge (in-process), the real channel layer and Redis:
who may connect, snapshot-then-frames, gaps, conflation, and private executions."""

import asyncio
import json

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer

from agents.live import SIM_GROUP
from exchange.live import bridge as bridge_module
from exchange.live.consumers import CLOSE_UNAUTHENTICATED, CLOSE_UNKNOWN_SYMBOL

from .support import (
    FakeWorker,
    communicator,
    make_instrument,
    make_user,
    receive,
    receive_until,
    running_bridge,
)

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def acme(db):
    return make_instrument("ACME")


@pytest.fixture
def people(db):
    return {name: make_user(name) for name in ("alice", "bob", "carol")}


# --- who may connect --------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/ws/account/", "/ws/sim/"])
async def test_private_sockets_refuse_anonymous(acme, path):
    """Accepted, then closed with the documented code (a close before the handshake is answered
    reaches a client as HTTP 403, whatever the code)."""
    comm = await communicator(path)
    connected, _ = await comm.connect()
    assert connected
    assert await comm.receive_output(timeout=5) == {
        "type": "websocket.close",
        "code": CLOSE_UNAUTHENTICATED,
    }
    # Let the consumer finish as a closed socket does, rather than be cancelled with the test's
    # loop: a channel-layer read cancelled at teardown hung the suite once.
    await comm.disconnect()


async def test_market_data_is_public_and_known_symbols_only(acme):
    comm = await communicator("/ws/market/ACME/")
    connected, _ = await comm.connect()
    assert connected
    snapshot = await receive(comm)
    assert snapshot["type"] == "snapshot" and snapshot["symbol"] == "ACME"
    assert snapshot["bridge"] is False  # no bridge runs: built from the book key and the DB
    await comm.disconnect()

    comm = await communicator("/ws/market/NOPE/")
    assert (await comm.connect())[0]
    closed = await comm.receive_output(timeout=5)
    assert closed == {"type": "websocket.close", "code": CLOSE_UNKNOWN_SYMBOL}
    await comm.disconnect()


async def test_foreign_origin_is_refused(acme, people):
    user, _ = people["alice"]
    comm = await communicator("/ws/account/", user, origin=(b"origin", b"https://evil.example"))
    connected, _ = await comm.connect()
    assert not connected


async def test_sim_socket_sends_status_first(acme, people):
    user, _ = people["alice"]
    comm = await communicator("/ws/sim/", user)
    connected, _ = await comm.connect()
    assert connected
    first = await receive(comm)
    assert first["type"] == "sim"
    if first["available"]:
        assert first["state"] in ("running", "paused")
        board = await receive(comm)
        assert board["type"] == "leaderboard" and isinstance(board["rows"], list)
    await comm.disconnect()


# --- market data --------------------------------------------------------------------------------


async def test_snapshot_then_chained_frames(acme, r):
    worker = FakeWorker(r)
    worker.apply(worker.new(1, "buy", 9990, 5), worker.new(1, "sell", 10010, 7), write_book=True)
    async with running_bridge():
        comm = await communicator("/ws/market/ACME/")
        assert (await comm.connect())[0]
        snapshot = await receive(comm)
        assert snapshot["type"] == "snapshot" and snapshot["bridge"] is True
        assert snapshot["bids"] == [["99.90", "5"]] and snapshot["asks"] == [["100.10", "7"]]
        seq = snapshot["seq"]

        worker.apply(worker.new(2, "buy", 10010, 3))  # trades 3 @ 100.10
        worker.apply(worker.new(2, "buy", 9995, 4))
        frames = []
        trade_frame, before = await receive_until(comm, lambda f: f["type"] == "trades")
        frames += [*before, trade_frame]
        book, before = await receive_until(
            comm, lambda f: f["type"] == "book" and f["bids"][0] == ["99.95", "4"]
        )
        frames += [*before, book]
        for frame in frames:  # every frame follows on from the one before
            assert frame["prev"] == seq and frame["seq"] >= seq
            seq = frame["seq"]
        assert trade_frame["trades"] == [
            {
                "seq": trade_frame["trades"][0]["seq"],
                "price": "100.10",
                "qty": "3",
                "side": "buy",
                "time": trade_frame["trades"][0]["time"],
            }
        ]
        assert book["asks"] == [["100.10", "4"]] and book["seq"] == worker.book.seq

        # A newcomer starts from a snapshot that already holds all of it.
        late = await communicator("/ws/market/ACME/")
        assert (await late.connect())[0]
        snapshot = await receive(late)
        assert snapshot["bids"][0] == ["99.95", "4"]
        assert [t["price"] for t in snapshot["trades"]] == ["100.10"]
        await late.disconnect()
        await comm.disconnect()


async def test_a_market_nobody_listens_to_is_kept_from_the_event_stream(acme, r):
    """No socket on the market: the bridge takes no market data for it and keeps its book and
    trades from the event stream; a newcomer starts from that and the frames chain on."""
    worker = FakeWorker(r)
    worker.apply(worker.new(1, "sell", 10010, 7), write_book=True)
    async with running_bridge() as bridge:
        for _ in range(100):
            if bridge.viewed == set() and not bridge.md_live:
                break
            await asyncio.sleep(0.05)
        assert bridge.viewed == set() and not bridge.md_live
        # Into the event stream only: market data nobody reads would tell the bridge nothing.
        worker.apply(worker.new(2, "buy", 10010, 3), publish=False)  # trades 3 @ 100.10
        worker.apply(worker.new(2, "buy", 9995, 4), publish=False)
        snapshot = None
        for _ in range(100):
            raw = r.get(bridge_module.snapshot_key("ACME"))
            snapshot = json.loads(raw) if raw else None
            if snapshot and snapshot["seq"] == worker.book.seq:
                break
            await asyncio.sleep(0.05)
        assert snapshot["bids"] == [["99.95", "4"]] and snapshot["asks"] == [["100.10", "4"]]
        assert [(t["price"], t["qty"]) for t in snapshot["trades"]] == [("100.10", "3")]

        comm = await communicator("/ws/market/ACME/")
        assert (await comm.connect())[0]
        first = await receive(comm)
        assert first["type"] == "snapshot" and first["seq"] == worker.book.seq
        worker.apply(worker.new(3, "buy", 9996, 2))
        book, before = await receive_until(
            comm, lambda f: f["type"] == "book" and f["bids"][0] == ["99.96", "2"]
        )
        seq = first["seq"]
        for frame in [*before, book]:
            assert frame["prev"] == seq
            seq = frame["seq"]
        await comm.disconnect()


async def test_consumer_resyncs_on_a_gap(acme, r):
    worker = FakeWorker(r)
    worker.apply(worker.new(1, "buy", 9990, 5), write_book=True)
    async with running_bridge():
        comm = await communicator("/ws/market/ACME/")
        assert (await comm.connect())[0]
        snapshot = await receive(comm)
        seq = snapshot["seq"]
        layer = get_channel_layer()
        # A stale frame (already in the snapshot) is skipped silently...
        await layer.group_send(
            "market.ACME",
            {"type": "market.frame", "seq": seq, "prev": seq - 1, "text": '{"type":"stale"}'},
        )
        # ...a frame that does not follow on means lost frames: the consumer sends a snapshot.
        lost = json.dumps({"type": "book", "seq": seq + 9, "prev": seq + 5})
        await layer.group_send(
            "market.ACME", {"type": "market.frame", "seq": seq + 9, "prev": seq + 5, "text": lost}
        )
        frame = await receive(comm)
        assert frame["type"] == "snapshot" and frame["resync"] is True
        assert frame["bids"] == [["99.90", "5"]]

        # The browser may ask for a snapshot itself (it saw a gap of its own).
        await comm.send_json_to({"type": "resync"})
        frame = await receive(comm)
        assert frame["type"] == "snapshot" and frame["resync"] is True
        await comm.disconnect()


async def test_bridge_fills_a_market_data_gap_from_the_event_stream(acme, r):
    worker = FakeWorker(r)
    worker.apply(worker.new(1, "sell", 10000, 10), write_book=True)
    async with running_bridge():
        comm = await communicator("/ws/market/ACME/")
        assert (await comm.connect())[0]
        await receive(comm)
        # This batch's market-data message is lost; its events are in the event stream.
        worker.apply(worker.new(2, "buy", 10000, 2), publish=False)
        worker.apply(worker.new(2, "buy", 10000, 3))
        trades = []
        book = None
        while book is None or book["asks"] != [["100.00", "5"]]:
            frame = await receive(comm)
            if frame["type"] == "trades":
                trades += frame["trades"]
            elif frame["type"] == "book":
                book = frame
        assert [t["qty"] for t in trades] == ["2", "3"]  # no trade lost
        await comm.disconnect()


async def test_market_data_lost_with_nothing_after_it_still_reaches_the_browser(acme, r):
    """The last messages of a burst are lost (published before the bridge subscribed, as when a
    browser opens a quiet market, or across a reconnect) and the market then falls quiet: no
    later message shows the gap, so the event stream must catch the book up on its own."""
    worker = FakeWorker(r)
    worker.apply(worker.new(1, "sell", 10000, 10), write_book=True)
    async with running_bridge() as bridge:
        comm = await communicator("/ws/market/ACME/")
        assert (await comm.connect())[0]
        await receive(comm)
        for _ in range(100):  # the bridge takes this market's data from now on
            if "ACME" in bridge.md_live:
                break
            await asyncio.sleep(0.05)
        assert "ACME" in bridge.md_live
        worker.apply(worker.new(2, "buy", 10000, 4), publish=False)
        worker.apply(worker.new(2, "buy", 9990, 6), publish=False)
        book, _ = await receive_until(
            comm, lambda f: f["type"] == "book" and f["asks"] == [["100.00", "6"]]
        )
        assert book["bids"] == [["99.90", "6"]] and book["seq"] == worker.book.seq
        await comm.disconnect()


async def test_book_frames_are_conflated_trades_are_not(acme, r):
    worker = FakeWorker(r)
    worker.apply(worker.new(1, "sell", 10000, 100_000), write_book=True)
    async with running_bridge():
        comm = await communicator("/ws/market/ACME/")
        assert (await comm.connect())[0]
        await receive(comm)
        loop = asyncio.get_running_loop()
        started = loop.time()
        for _ in range(300):  # far more batches than 10 a second
            worker.apply(worker.new(2, "buy", 10000, 1), worker.new(3, "buy", 9000 + _, 1))
            await asyncio.sleep(0.002)
        books = trades = 0
        while trades < 300:
            frame = await receive(comm)
            books += frame["type"] == "book"
            trades += len(frame.get("trades", []))
        elapsed = loop.time() - started
        assert trades == 300
        # At most one book frame per 0.1 s (plus the one in flight at either end).
        assert books <= elapsed / bridge_module.BOOK_INTERVAL + 2, (books, elapsed)
        await comm.disconnect()


async def test_the_bridge_knows_which_groups_have_listeners(acme, people):
    """A market or sim group counts as listened to while a socket is in it (the bridge slows
    down what nobody watches); with another kind of channel layer every group counts."""
    bridge = bridge_module.Bridge()
    groups = [bridge_module.market_group("ACME"), SIM_GROUP]
    assert await bridge._listened(groups) == set()
    market = await communicator("/ws/market/ACME/")
    assert (await market.connect())[0]
    await receive(market)  # the snapshot: it has joined
    assert await bridge._listened(groups) == {"market.ACME"}
    user, _ = people["alice"]
    sim = await communicator("/ws/sim/", user)
    assert (await sim.connect())[0]
    await receive(sim)
    assert await bridge._listened(groups) == {"market.ACME", "sim"}
    await market.disconnect()
    await sim.disconnect()
    assert await bridge._listened(groups) == set()

    class OtherLayer:
        pass

    bridge.layer = OtherLayer()
    assert await bridge._listened(groups) is None
    bridge.viewed = None
    assert bridge._is_viewed("market.ACME")


# --- private executions ---------------------------------------------------------------------


async def test_users_receive_only_their_own_executions(acme, people, r):
    (alice, alice_acct), (bob, bob_acct) = people["alice"], people["bob"]
    carol, _ = people["carol"]
    async with running_bridge() as bridge:
        sockets = {}
        for name, user in (("alice", alice), ("bob", bob), ("carol", carol)):
            sockets[name] = await communicator("/ws/account/", user)
            assert (await sockets[name].connect())[0]
            hello = await receive(sockets[name])
            assert hello["type"] == "hello"
        assert hello["account"] != alice_acct.pk
        while len(bridge.watched) < 3:  # the bridge learns who is watching
            await asyncio.sleep(0.05)

        worker = FakeWorker(r)
        agent = 999_999  # an account nobody watches
        worker.apply(worker.new(alice_acct.pk, "sell", 10000, 5, ref=77))
        worker.apply(worker.new(bob_acct.pk, "buy", 10000, 2), worker.new(agent, "buy", 9000, 1))

        alice_events = []
        while len(alice_events) < 2:
            frame = await receive(sockets["alice"])
            assert frame["type"] == "executions" and frame["symbol"] == "ACME"
            alice_events += frame["events"]
        bob_events = []
        while len(bob_events) < 2:
            bob_events += (await receive(sockets["bob"]))["events"]

        assert [e["kind"] for e in alice_events] == ["accepted", "trade"]
        assert alice_events[0]["ref"] == 77 and alice_events[0]["price"] == "100.00"
        assert alice_events[1] | {"seq": 0} == {
            "seq": 0,
            "kind": "trade",
            "order_id": 1,
            "role": "maker",
            "side": "sell",
            "price": "100.00",
            "qty": "2",
            "remaining": "3",
        }
        assert [e["kind"] for e in bob_events] == ["accepted", "trade"]
        assert bob_events[1]["role"] == "taker" and bob_events[1]["order_id"] == 2
        assert all(e["order_id"] in (1, 2) for e in alice_events + bob_events)
        assert await sockets["carol"].receive_nothing(timeout=0.5)
        assert await sockets["alice"].receive_nothing(timeout=0.2)  # not the agent's order
        for comm in sockets.values():
            await comm.disconnect()


async def test_sim_notices_reach_logged_in_users(acme, people, r, settings):
    user, _ = people["alice"]
    async with running_bridge():
        comm = await communicator("/ws/sim/", user)
        assert (await comm.connect())[0]
        await receive(comm)  # the current state first
        await asyncio.sleep(0.2)
        notice = {"type": "sim", "state": "paused", "changed_at": None, "runner_alive": True}
        await database_sync_to_async(r.publish)(
            f"{settings.FLASHBOOK_REDIS_PREFIX}:sim", json.dumps(notice | {"last_shock": None})
        )
        frame, _ = await receive_until(comm, lambda f: f["type"] == "sim" and f.get("state"))
        assert frame["state"] == "paused" and frame["seq"] >= 1
        await comm.disconnect()
