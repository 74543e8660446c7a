"""LOBSTER output: the message file and the order book file, written as the simulation runs.

:class:`LobsterBook` is at once the writer and a mirror of the book's price levels. Every row of
the message file is applied to the mirror as it is written, so the order book row written next to
it is the book *right after that message* — also in the middle of one command (a sweep through
three levels is three type-4 rows, each with the book as it stood after that execution), which the
engine's per-command events cannot give directly. The simulator reads the touch and the top
levels for the agents' views from the same mirror, so what agents see and what researchers get
are one and the same book.

Format facts (``/work/shared/LOBSTER.md``, lobsterdata.com): no header; time in seconds after
midnight (nanosecond precision here); event types 1 new limit order, 2 partial cancellation,
3 full deletion, 4 execution of a visible limit order, 7 trading halt indicator; price in dollars
x 10,000; direction of the *limit order* the row is about (-1 sell, 1 buy). The order book file
has ``4 * levels`` columns: ask price, ask size, bid price, bid size per level, best first, an
empty level written as 9999999999 / -9999999999 with size 0.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from typing import TextIO

__all__ = [
    "EMPTY_ASK_PRICE",
    "EMPTY_BID_PRICE",
    "LobsterBook",
    "lobster_file_names",
]

EMPTY_ASK_PRICE = 9999999999
EMPTY_BID_PRICE = -9999999999
NS_PER_S = 1_000_000_000
NEW, PARTIAL_CANCEL, DELETE, EXECUTE, HALT = 1, 2, 3, 4, 7
#: Rows kept in memory before they are written out.
_FLUSH_ROWS = 65_536


def lobster_file_names(symbol: str, date: str, start_ns: int, end_ns: int, levels: int):
    """``(message, orderbook)`` file names: ``TICKER_DATE_STARTMS_ENDMS_{message|orderbook}_N``
    with the session's start and end in milliseconds after midnight."""
    stem = f"{symbol}_{date}_{start_ns // 1_000_000}_{end_ns // 1_000_000}"
    return f"{stem}_message_{levels}.csv", f"{stem}_orderbook_{levels}.csv"


class LobsterBook:
    """The level mirror plus the two writers. ``bid_prices``/``ask_prices`` are ascending lists
    of occupied prices (best bid last, best ask first); ``bid_qty``/``ask_qty`` map a price to
    its total resting quantity in lots. Quantities are lots and prices ticks on the way in;
    the files get shares (x ``lot_size``) and dollars x 10,000 (x ``price_multiplier``)."""

    def __init__(
        self,
        message_file: TextIO,
        orderbook_file: TextIO,
        *,
        levels: int,
        price_multiplier: int,
        lot_size: int,
    ) -> None:
        self.levels = levels
        self.bid_prices: list[int] = []
        self.ask_prices: list[int] = []
        self.bid_qty: dict[int, int] = {}
        self.ask_qty: dict[int, int] = {}
        #: Bumped on every change of the book (views are rebuilt only when it moves).
        self.version = 0
        self.messages = 0
        self._mult = price_multiplier
        self._lot = lot_size
        # "price,size" text of every occupied level, kept as the level changes.
        self._bid_text: dict[int, str] = {}
        self._ask_text: dict[int, str] = {}
        self._empty_ask = f"{EMPTY_ASK_PRICE},0"
        self._empty_bid = f"{EMPTY_BID_PRICE},0"
        self._cols = [self._empty_ask, self._empty_bid] * levels
        self._row = self._build_row()
        self._row_stale = False
        self._time_ns = -1
        self._time_text = ""
        self._msg_out = message_file
        self._book_out = orderbook_file
        self._msg_rows: list[str] = []
        self._book_rows: list[str] = []

    # --- the mirror -----------------------------------------------------------------------------

    @property
    def bid(self) -> tuple[int, int] | None:
        prices = self.bid_prices
        return (prices[-1], self.bid_qty[prices[-1]]) if prices else None

    @property
    def ask(self) -> tuple[int, int] | None:
        prices = self.ask_prices
        return (prices[0], self.ask_qty[prices[0]]) if prices else None

    def depth(self, levels: int) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        """``(bids, asks)``, best first, as ``OrderBook.depth`` gives them."""
        bq, aq = self.bid_qty, self.ask_qty
        bids = [(p, bq[p]) for p in self.bid_prices[: -levels - 1 : -1]]
        asks = [(p, aq[p]) for p in self.ask_prices[:levels]]
        return bids, asks

    # The order book row is kept as a list of 2 * levels "price,size" columns (ask i at 2i, bid i
    # at 2i + 1): a size change touches one column, a level appearing or going shifts the columns
    # below it, and the row text is re-joined only when a column changed.

    def _bid_change(self, price: int, delta: int) -> None:
        prices = self.bid_prices
        quantities = self.bid_qty
        texts = self._bid_text
        qty = quantities.get(price, 0) + delta
        if qty > 0:
            texts[price] = text = f"{price * self._mult},{qty * self._lot}"
            if price in quantities:
                quantities[price] = qty
                rank = len(prices) - 1 - bisect_left(prices, price)
                if rank < self.levels:
                    self._cols[2 * rank + 1] = text
                    self._row_stale = True
            else:
                quantities[price] = qty
                insort(prices, price)
                self._shift_bids(len(prices) - 1 - bisect_left(prices, price))
        elif qty == 0:
            del quantities[price]
            del texts[price]
            index = bisect_left(prices, price)
            rank = len(prices) - 1 - index
            del prices[index]
            self._shift_bids(rank)
        else:
            raise AssertionError(f"bid level {price} would go negative ({qty})")
        self.version += 1

    def _shift_bids(self, rank: int) -> None:
        n = self.levels
        if rank >= n:
            return
        prices, texts, cols = self.bid_prices, self._bid_text, self._cols
        top = len(prices) - 1
        empty = self._empty_bid
        for j in range(rank, n):
            cols[2 * j + 1] = texts[prices[top - j]] if j <= top else empty
        self._row_stale = True

    def _ask_change(self, price: int, delta: int) -> None:
        prices = self.ask_prices
        quantities = self.ask_qty
        texts = self._ask_text
        qty = quantities.get(price, 0) + delta
        if qty > 0:
            texts[price] = text = f"{price * self._mult},{qty * self._lot}"
            if price in quantities:
                quantities[price] = qty
                rank = bisect_left(prices, price)
                if rank < self.levels:
                    self._cols[2 * rank] = text
                    self._row_stale = True
            else:
                quantities[price] = qty
                insort(prices, price)
                self._shift_asks(bisect_left(prices, price))
        elif qty == 0:
            del quantities[price]
            del texts[price]
            rank = bisect_left(prices, price)
            del prices[rank]
            self._shift_asks(rank)
        else:
            raise AssertionError(f"ask level {price} would go negative ({qty})")
        self.version += 1

    def _shift_asks(self, rank: int) -> None:
        n = self.levels
        if rank >= n:
            return
        prices, texts, cols = self.ask_prices, self._ask_text, self._cols
        count = len(prices)
        empty = self._empty_ask
        for j in range(rank, n):
            cols[2 * j] = texts[prices[j]] if j < count else empty
        self._row_stale = True

    def _build_row(self) -> str:
        return ",".join(self._cols) + "\n"

    def seed(self, bids, asks) -> None:
        """Starts the mirror from a book that is not empty (a fork of the live market), without
        rows: those orders were placed before the file's first message, so the first order book
        row shows them, as the first row of a LOBSTER day shows the book at the open."""
        for price, qty in bids:
            self._bid_change(price, qty)
        for price, qty in asks:
            self._ask_change(price, qty)

    # --- rows -------------------------------------------------------------------------------------

    def _write(self, time_ns: int, kind: int, order_id: int, qty: int, price: int, is_buy: bool):
        if time_ns != self._time_ns:
            self._time_ns = time_ns
            seconds, fraction = divmod(time_ns, NS_PER_S)
            self._time_text = f"{seconds}.{fraction:09d},"
        self._msg_rows.append(
            f"{self._time_text}{kind},{order_id},{qty * self._lot},{price * self._mult},"
            f"{1 if is_buy else -1}\n"
        )
        if self._row_stale:
            self._row = self._build_row()
            self._row_stale = False
        self._book_rows.append(self._row)
        self.messages += 1
        if len(self._msg_rows) >= _FLUSH_ROWS:
            self.flush()

    def add(self, time_ns: int, order_id: int, qty: int, price: int, is_buy: bool) -> None:
        """Type 1: a limit order (or the rest of one) now rests on the book."""
        if is_buy:
            self._bid_change(price, qty)
        else:
            self._ask_change(price, qty)
        self._write(time_ns, NEW, order_id, qty, price, is_buy)

    def partial_cancel(self, time_ns: int, order_id: int, qty: int, price: int, is_buy: bool):
        """Type 2: ``qty`` lots of a resting order cancelled, the rest keeps its place."""
        if is_buy:
            self._bid_change(price, -qty)
        else:
            self._ask_change(price, -qty)
        self._write(time_ns, PARTIAL_CANCEL, order_id, qty, price, is_buy)

    def delete(self, time_ns: int, order_id: int, qty: int, price: int, is_buy: bool) -> None:
        """Type 3: a resting order's remaining ``qty`` lots deleted."""
        if is_buy:
            self._bid_change(price, -qty)
        else:
            self._ask_change(price, -qty)
        self._write(time_ns, DELETE, order_id, qty, price, is_buy)

    def execute(self, time_ns: int, order_id: int, qty: int, price: int, is_buy: bool) -> None:
        """Type 4: ``qty`` lots of the resting order executed; ``is_buy`` is the resting order's
        side (a sell order executed = a buyer-initiated trade)."""
        if is_buy:
            self._bid_change(price, -qty)
        else:
            self._ask_change(price, -qty)
        self._write(time_ns, EXECUTE, order_id, qty, price, is_buy)

    def halt_indicator(self, time_ns: int, code: int) -> None:
        """Type 7: price -1 a halt starts, 0 quoting resumes, 1 trading resumes. The order id and
        size are 0, the direction -1 (as in LOBSTER's own files); the book row repeats."""
        if time_ns != self._time_ns:
            self._time_ns = time_ns
            seconds, fraction = divmod(time_ns, NS_PER_S)
            self._time_text = f"{seconds}.{fraction:09d},"
        self._msg_rows.append(f"{self._time_text}{HALT},0,0,{code},-1\n")
        self._book_rows.append(self._row)
        self.messages += 1

    def flush(self) -> None:
        self._msg_out.writelines(self._msg_rows)
        self._book_out.writelines(self._book_rows)
        self._msg_rows.clear()
        self._book_rows.clear()
