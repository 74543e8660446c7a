"""Micro-benchmark of the live feed's number writing (the bridge's hot loop writes a price and a
quantity for every level change and trade): `Scale.price` / `Scale.qty` (integers) against the
decimal writers (`price_str`, and `decimal_str`, what the feed used before prices were written to
the tick).

    python bench/bench_decimals.py
"""

import os
import sys
import timeit
from decimal import Decimal
from pathlib import Path

import django

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the project
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "flashbook_site.settings")
django.setup()

from exchange.live.market_state import Scale  # noqa: E402
from exchange.protocol.decimals import decimal_str, price_str  # noqa: E402

N = 200_000


def best(fn) -> float:
    """Microseconds a call, the best of five runs."""
    return min(timeit.repeat(fn, number=N, repeat=5)) / N * 1e6


def main() -> None:
    tick, lot = Decimal("0.01000000"), Decimal("1.00000000")  # as the database gives them
    scale = Scale(tick, lot)
    rows = [
        ("Scale.price(ticks)", lambda: scale.price(10010)),
        ("Scale.qty(lots)", lambda: scale.qty(37)),
        ("price_str(tick * ticks)", lambda: price_str(tick * 10010, tick)),
        ("decimal_str(tick * ticks) (before)", lambda: decimal_str(tick * 10010)),
        ("decimal_str(lot * lots) (before)", lambda: decimal_str(lot * 37)),
    ]
    for name, fn in rows:
        print(f"{name:40} {best(fn):.3f} us")


if __name__ == "__main__":
    main()
