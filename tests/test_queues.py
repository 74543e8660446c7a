"""Queue positions from the engine's queue key (`exchange.protocol.queues`): the text the engine
worker writes (`engine_rs/src/feed.rs`, `queue_text`, whose unit test writes the same text)."""

from exchange.protocol.queues import QueueSpot, queue_spot

TEXT = "8\nb 99 2 7 1:2 2:5\nb 98 1 1 3:1\na 101 3 9 4:7 6:1 5:1\n"


def test_an_orders_spot_is_what_is_listed_before_it_at_its_price():
    assert queue_spot(TEXT, "buy", 99, 1) == QueueSpot(0, 0, 7, 2, 8)
    assert queue_spot(TEXT, "buy", 99, 2) == QueueSpot(2, 1, 7, 2, 8)
    assert queue_spot(TEXT, "buy", 98, 3) == QueueSpot(0, 0, 1, 1, 8)
    assert queue_spot(TEXT, "sell", 101, 5) == QueueSpot(8, 2, 9, 3, 8)


def test_an_order_not_listed_has_no_spot():
    assert queue_spot(TEXT, "sell", 99, 1) is None  # the other side
    assert queue_spot(TEXT, "buy", 97, 1) is None  # a level not published
    assert queue_spot(TEXT, "buy", 99, 3) is None  # another level's order
    assert queue_spot(TEXT, "buy", 9, 1) is None  # a price that is a prefix of another
    assert queue_spot(TEXT, "sell", 101, 10) is None  # further back than listed, or gone
    assert queue_spot("", "buy", 99, 1) is None
    assert queue_spot("0\n", "buy", 99, 1) is None
