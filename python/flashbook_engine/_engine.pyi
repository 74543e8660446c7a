"""Type stubs for the compiled engine module (``engine_rs/src/python/``).

Prices are ``int`` ticks, quantities ``int`` lots, ids ``int`` in ``0 .. 2**64 - 1``. Enum values
are the strings of :mod:`flashbook_engine._types`. Bad strings raise ``ValueError``, integers out
of range ``OverflowError``, wrong types (a float price) ``TypeError``; everything else the engine
judges itself and answers with a ``"rejected"`` event, never an exception.
"""

from collections.abc import Callable, Iterable, Mapping
from typing import Self, TypedDict, final

from typing_extensions import Buffer

from flashbook_engine._types import (
    BookStatus,
    CancelReason,
    CommandKind,
    EventKind,
    OrderType,
    RejectReason,
    Side,
    StpMode,
    TimeInForce,
)

__all__ = [
    "MAX_PRICE",
    "MAX_QTY",
    "Bbo",
    "Command",
    "Event",
    "Exposure",
    "OrderBook",
    "QueuePosition",
    "RestingOrder",
    "SnapshotError",
    "__version__",
    "command_fields",
    "decode_events",
    "run_worker",
    "symbol_shard",
]

__version__: str
#: Largest valid price in ticks (2**53 - 1).
MAX_PRICE: int
#: Largest valid quantity in lots (2**40 - 1).
MAX_QTY: int

class SnapshotError(ValueError):
    """Bytes that are not a valid Flashbook snapshot (wrong format, truncated, corrupted or
    inconsistent)."""

@final
class Event:
    """One engine event. Attributes that do not apply to ``kind`` are None:

    ============ ===================================================================
    kind         attributes
    ============ ===================================================================
    accepted     order_id account side order_type tif price qty post_only client_ref
    rejected     order_id account command reason (a RejectReason) client_ref
    trade        maker_order_id maker_account taker_order_id taker_account price qty
                 aggressor maker_remaining taker_remaining maker_fee_bps taker_fee_bps
    cancelled    order_id account side price qty reason (a CancelReason)
    replaced     order_id account side old_price old_qty price qty kept_priority
    level        side price qty (the level's new total; 0 = level gone)
    status       status
    ============ ===================================================================

    Events compare equal (and hash equal) when every field, including ``seq``, is equal.
    """

    @property
    def seq(self) -> int: ...
    @property
    def kind(self) -> EventKind: ...
    @property
    def order_id(self) -> int | None: ...
    @property
    def account(self) -> int | None: ...
    @property
    def side(self) -> Side | None: ...
    @property
    def order_type(self) -> OrderType | None: ...
    @property
    def tif(self) -> TimeInForce | None: ...
    @property
    def price(self) -> int | None: ...
    @property
    def qty(self) -> int | None: ...
    @property
    def post_only(self) -> bool | None: ...
    @property
    def reason(self) -> RejectReason | CancelReason | None: ...
    @property
    def command(self) -> CommandKind | None: ...
    @property
    def maker_order_id(self) -> int | None: ...
    @property
    def maker_account(self) -> int | None: ...
    @property
    def taker_order_id(self) -> int | None: ...
    @property
    def taker_account(self) -> int | None: ...
    @property
    def aggressor(self) -> Side | None: ...
    @property
    def maker_remaining(self) -> int | None: ...
    @property
    def taker_remaining(self) -> int | None: ...
    @property
    def maker_fee_bps(self) -> int | None:
        """A trade's fee rates (the last FEES), in basis points of its value."""
    @property
    def taker_fee_bps(self) -> int | None: ...
    @property
    def old_price(self) -> int | None: ...
    @property
    def old_qty(self) -> int | None: ...
    @property
    def kept_priority(self) -> bool | None: ...
    @property
    def status(self) -> BookStatus | None: ...
    @property
    def client_ref(self) -> int | None:
        """The NEW's opaque producer reference (journal field ``ref``; 0 when absent)."""
    def to_dict(self) -> dict[str, int | str | bool]:
        """``seq``, ``kind`` and the attributes that apply to this kind (no None values)."""
    def __eq__(self, other: object, /) -> bool: ...
    def __hash__(self) -> int: ...

@final
class Command:
    """A command for :meth:`OrderBook.submit` and :meth:`OrderBook.submit_many`. Build it with
    the static constructors; ``repr()`` gives a Python expression that rebuilds it. Attributes
    that do not apply to ``kind`` are None."""

    @staticmethod
    def new(
        order_id: int,
        account: int,
        side: Side,
        price: int,
        qty: int,
        *,
        order_type: OrderType = "limit",
        tif: TimeInForce | None = None,
        post_only: bool = False,
        stp: StpMode = "none",
        max_position: int | None = None,
    ) -> Command:
        """A NEW order. ``tif`` defaults to "gtc" for limit and "ioc" for market orders; the
        price of a market order is ignored."""
    @staticmethod
    def market(
        order_id: int,
        account: int,
        side: Side,
        qty: int,
        *,
        tif: TimeInForce = "ioc",
        stp: StpMode = "none",
        max_position: int | None = None,
    ) -> Command:
        """A NEW market order."""
    @staticmethod
    def cancel(order_id: int, account: int) -> Command: ...
    @staticmethod
    def replace(
        order_id: int, account: int, *, price: int | None = None, qty: int | None = None
    ) -> Command:
        """Change a resting order's price and/or remaining quantity (None keeps it)."""
    @staticmethod
    def halt() -> Command: ...
    @staticmethod
    def resume() -> Command: ...
    @staticmethod
    def reset() -> Command: ...
    @staticmethod
    def band(bps: int, reference: int = 0) -> Command:
        """The price band: NEW and REPLACE prices, and market orders' sweeps, within ``bps`` basis
        points of the last trade (before any, of ``reference``, in ticks); 0 turns it off."""
    @staticmethod
    def volatility(bps: int, window_ms: int = 0, pause_ms: int = 0) -> Command:
        """The volatility guard: a trade more than ``bps`` basis points from any trade of the
        last ``window_ms`` milliseconds pauses the book for ``pause_ms`` (NEW and REPLACE
        refused, CANCEL allowed); 0 turns it off."""
    @staticmethod
    def fees(maker_bps: int, taker_bps: int) -> Command:
        """The fee rates later trades carry, in basis points (a negative maker rate: a rebate)."""
    @staticmethod
    def clock() -> Command:
        """The journal's clock ticked (its time is the entry id's, see ``apply_entry``)."""
    @property
    def kind(self) -> CommandKind: ...
    @property
    def order_id(self) -> int | None: ...
    @property
    def account(self) -> int | None: ...
    @property
    def side(self) -> Side | None: ...
    @property
    def order_type(self) -> OrderType | None: ...
    @property
    def tif(self) -> TimeInForce | None: ...
    @property
    def price(self) -> int | None:
        """The limit price of a NEW limit order, the new price of a REPLACE or a BAND's
        reference, else None."""
    @property
    def bps(self) -> int | None:
        """A BAND's width or a VOLATILITY's largest move in basis points, else None."""
    @property
    def window_ms(self) -> int | None:
        """A VOLATILITY's window in milliseconds, else None."""
    @property
    def pause_ms(self) -> int | None:
        """A VOLATILITY's pause in milliseconds, else None."""
    @property
    def maker_bps(self) -> int | None:
        """A FEES's maker rate in basis points, else None."""
    @property
    def taker_bps(self) -> int | None:
        """A FEES's taker rate in basis points, else None."""
    @property
    def qty(self) -> int | None: ...
    @property
    def post_only(self) -> bool | None: ...
    @property
    def stp(self) -> StpMode | None: ...
    @property
    def max_position(self) -> int | None: ...
    def __eq__(self, other: object, /) -> bool: ...
    def __hash__(self) -> int: ...

@final
class Bbo:
    """Best bid and offer: ``(price, qty)`` per side, None when that side is empty."""

    @property
    def bid(self) -> tuple[int, int] | None: ...
    @property
    def ask(self) -> tuple[int, int] | None: ...
    @property
    def bid_price(self) -> int | None: ...
    @property
    def bid_qty(self) -> int | None: ...
    @property
    def ask_price(self) -> int | None: ...
    @property
    def ask_qty(self) -> int | None: ...
    @property
    def spread(self) -> int | None:
        """Ask minus bid in ticks, None unless both sides are present."""
    def __eq__(self, other: object, /) -> bool: ...
    def __hash__(self) -> int: ...

@final
class RestingOrder:
    """A resting order as the book holds it (``qty`` is the open quantity)."""

    @property
    def order_id(self) -> int: ...
    @property
    def account(self) -> int: ...
    @property
    def side(self) -> Side: ...
    @property
    def price(self) -> int: ...
    @property
    def qty(self) -> int: ...
    @property
    def stp(self) -> StpMode: ...
    @property
    def post_only(self) -> bool: ...
    @property
    def max_position(self) -> int | None: ...
    def __eq__(self, other: object, /) -> bool: ...
    def __hash__(self) -> int: ...

@final
class Exposure:
    """An account's net position (positive = long) and the open quantity of its resting
    orders per side, in lots."""

    @property
    def position(self) -> int: ...
    @property
    def open_buy(self) -> int: ...
    @property
    def open_sell(self) -> int: ...
    def __eq__(self, other: object, /) -> bool: ...
    def __hash__(self) -> int: ...

@final
class QueuePosition:
    """Where a resting order stands in its price level's queue: the open quantity and the
    number of orders ahead of it (older orders at its price, which fill first), and the level's
    whole open quantity and order count (the order included)."""

    @property
    def order_id(self) -> int: ...
    @property
    def side(self) -> Side: ...
    @property
    def price(self) -> int: ...
    @property
    def qty(self) -> int: ...
    @property
    def qty_ahead(self) -> int: ...
    @property
    def orders_ahead(self) -> int: ...
    @property
    def level_qty(self) -> int: ...
    @property
    def level_orders(self) -> int: ...
    def __eq__(self, other: object, /) -> bool: ...
    def __hash__(self) -> int: ...

@final
class OrderBook:
    """One symbol's limit order book. Every command returns its events, in sequence order.

    Not for concurrent use: a call from a second thread while one is running raises
    ``RuntimeError`` ("Already borrowed"). Picklable (through a snapshot).
    """

    def __new__(cls, symbol: str, capacity: int = 0) -> Self:
        """An empty book; ``capacity`` (at most 2**24) pre-sizes it for that many resting
        orders."""
    # --- commands ---
    def new_order(
        self,
        order_id: int,
        account: int,
        side: Side,
        price: int,
        qty: int,
        *,
        order_type: OrderType = "limit",
        tif: TimeInForce | None = None,
        post_only: bool = False,
        stp: StpMode = "none",
        max_position: int | None = None,
    ) -> list[Event]:
        """Submits a NEW order. ``tif`` defaults to "gtc" for limit and "ioc" for market
        orders; the price of a market order is ignored."""
    def market_order(
        self,
        order_id: int,
        account: int,
        side: Side,
        qty: int,
        *,
        tif: TimeInForce = "ioc",
        stp: StpMode = "none",
        max_position: int | None = None,
    ) -> list[Event]:
        """Submits a NEW market order."""
    def cancel(self, order_id: int, account: int) -> list[Event]: ...
    def replace(
        self, order_id: int, account: int, *, price: int | None = None, qty: int | None = None
    ) -> list[Event]:
        """Changes a resting order's price and/or remaining quantity (None keeps it)."""
    def halt(self) -> list[Event]: ...
    def resume(self) -> list[Event]: ...
    def reset(self) -> list[Event]:
        """Cancels every resting order and zeroes every position; the sequence continues."""
    @property
    def band_limits(self) -> tuple[int, int] | None:
        """The lowest and highest limit prices the price band allows now (None: no band)."""
    @property
    def volatility(self) -> tuple[int, int, int, int]:
        """The volatility guard: ``(bps, window_ms, pause_ms, paused_until)``; bps 0 when off,
        paused_until 0 when not paused."""
    @property
    def paused(self) -> bool:
        """Whether the volatility guard pauses the book now."""
    @property
    def fees(self) -> tuple[int, int]:
        """The fee rates trades carry: ``(maker_bps, taker_bps)``."""
    @property
    def now_ms(self) -> int:
        """The journal's clock as far as the book knows it, in milliseconds."""
    def advance_clock(self, now_ms: int) -> list[Event]:
        """Moves the clock to ``now_ms`` (an earlier time is ignored); returns ``PAUSE_ENDED``
        when a volatility pause is over, else nothing."""
    def submit(self, command: Command) -> list[Event]: ...
    def submit_many(self, commands: Iterable[Command]) -> list[Event]:
        """Applies the commands in order and returns all their events, flat. Every item is
        checked first: a non-Command raises TypeError and nothing is applied. Large batches
        release the GIL while matching."""
    def apply_entry(
        self,
        fields: Mapping[str | bytes, str | bytes] | Iterable[tuple[str | bytes, str | bytes]],
        entry_id: str | None = None,
    ) -> list[Event]:
        """Applies one journal entry (its stream fields) exactly as the engine worker does: an
        undecodable entry becomes a ``MALFORMED`` rejection; ``entry_id`` (the stream id) moves
        the book's clock to its time first. See ``docs/protocol.md``."""
    # --- views ---
    def bbo(self) -> Bbo: ...
    def depth(self, levels: int = 10) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        """``(bids, asks)``: the best ``levels`` levels per side as ``(price, qty)``, best
        first."""
    def order(self, order_id: int) -> RestingOrder | None: ...
    def resting_orders(self) -> list[RestingOrder]:
        """Every resting order in priority order: bids best to worst, then asks best to worst,
        each level oldest first."""
    def queue_position(self, order_id: int) -> QueuePosition | None:
        """Where the resting order stands in its price level's queue (None: not resting)."""
    def queue_positions(self, order_ids: list[int]) -> list[QueuePosition | None]:
        """``queue_position`` of each id, in order: one call for all of an account's orders."""
    def exposure(self, account: int) -> Exposure: ...
    def exposures(self) -> dict[int, Exposure]:
        """Every account with a non-zero position or open quantity, by account id."""
    @property
    def symbol(self) -> str: ...
    @property
    def seq(self) -> int:
        """Sequence number of the last event (0 before the first)."""
    @property
    def halted(self) -> bool: ...
    @property
    def last_order_id(self) -> int:
        """The highest order id seen; a NEW must carry a larger one."""
    @property
    def order_count(self) -> int: ...
    @property
    def level_count(self) -> int: ...
    # --- state ---
    def state_hash(self) -> int:
        """A 64-bit fingerprint of everything that decides future matching."""
    def snapshot(self) -> bytes: ...
    @staticmethod
    def restore(data: Buffer) -> OrderBook:
        """Rebuilds a book from :meth:`snapshot` bytes; raises :class:`SnapshotError`."""
    def __reduce__(self) -> tuple[Callable[[bytes], OrderBook], tuple[bytes]]: ...

def decode_events(text: str | bytes) -> list[Event]:
    """Parses event lines as the worker writes them (event stream entries, replies, market data)."""

def command_fields(command: Command) -> list[tuple[str, str]]:
    """The journal stream fields of a command, ready for ``XADD``."""

class WorkerReport(TypedDict):
    symbol: str
    commands: int
    events_written: int
    seq: int
    last_journal_id: str
    state_hash: int
    recoveries: int

def run_worker(
    redis_url: str,
    prefix: str,
    symbols: list[str],
    *,
    batch_size: int = 2000,
    block_ms: int = 200,
    snapshot_every: int = 100_000,
    snapshot_interval: float = 30.0,
    book_interval_ms: int = 50,
    book_levels: int = 20,
    reply_ttl_ms: int = 30_000,
    exit_when_drained: bool = False,
    shard: tuple[int, int] | None = None,
    discover_interval_ms: int = 500,
) -> list[WorkerReport]:
    """Runs the engine worker (GIL released) until SIGINT/SIGTERM, or until every journal is
    drained with ``exit_when_drained``. ``shard=(i, n)``: also serves, as they are enabled, the
    registry's symbols (``{prefix}:instruments``) of shard ``i`` of ``n`` (from 1), looked for
    every ``discover_interval_ms``. Raises ValueError for a bad configuration."""

def symbol_shard(symbol: str, shards: int) -> int:
    """The engine shard (from 1) of ``shards`` that serves ``symbol``: its Redis Cluster key slot
    modulo ``shards``."""
