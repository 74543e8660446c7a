"""Per-call cost of the Python bindings against plain Python calls (a benchmark, not a test).

    python tests/engine/bench_bindings.py [N]

Prints nanoseconds per loop iteration (best of several runs) for an empty loop, an empty Python
function taking the same five arguments as ``new_order``, and the binding calls. The binding is
"bound by Python" when its cost is of the order of a few plain Python calls.
"""

from __future__ import annotations

import gc
import sys
import time
from collections.abc import Callable

from flashbook_engine import Command, OrderBook

N = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
REPEATS = 7


def best_ns_per_iteration(run: Callable[[], object]) -> float:
    times = []
    for _ in range(REPEATS):
        gc.collect()
        start = time.perf_counter_ns()
        run()
        times.append(time.perf_counter_ns() - start)
    return min(times) / N


def empty_loop() -> None:
    for _ in range(N):
        pass


def python_function(order_id, account, side, price, qty):
    return None


def empty_python_call() -> None:
    call = python_function
    for i in range(1, N + 1):
        call(i, 7, "buy", 1000 - (i & 63), 1)


def new_order_resting() -> None:
    """Every order rests: 2 events (accepted, level)."""
    new = OrderBook("X", N).new_order
    for i in range(1, N + 1):
        new(i, 7, "buy", 1000 - (i & 63), 1)


def new_order_keywords() -> None:
    new = OrderBook("X", N).new_order
    for i in range(1, N + 1):
        new(i, 7, "buy", 1000 - (i & 63), 1, tif="gtc", stp="cancel_newest", max_position=10**9)


def new_order_crossing() -> None:
    """Alternating sell then buy at one price: 2 and 4 events (accepted, trade, level...)."""
    new = OrderBook("X").new_order
    for i in range(1, N + 1, 2):
        new(i, 7, "sell", 1000, 1)
        new(i + 1, 8, "buy", 1000, 1)


def new_order_reading_events() -> None:
    new = OrderBook("X", N).new_order
    total = 0
    for i in range(1, N + 1):
        for event in new(i, 7, "buy", 1000 - (i & 63), 1):
            total += event.qty


def cancel_unknown() -> None:
    """One rejected event per call: the floor of a command round trip."""
    cancel = OrderBook("X").cancel
    for i in range(1, N + 1):
        cancel(i, 7)


def build_commands() -> None:
    new = Command.new
    for i in range(1, N + 1):
        new(i, 7, "buy", 1000 - (i & 63), 1)


def agent_steps(submit: bool) -> Callable[[], None]:
    """A minimal agent step: draw a side, a price offset and a size, then (maybe) submit."""

    def run() -> None:
        import random

        rng = random.Random(1)
        book = OrderBook("X", N)
        new = book.new_order
        sides = ("buy", "sell")
        mid = 1000
        for i in range(1, N + 1):
            side = sides[rng.random() < 0.5]
            price = mid - rng.randint(1, 20) if side == "buy" else mid + rng.randint(1, 20)
            qty = 1 + int(rng.random() * 10)
            if submit:
                new(i, 7, side, price, qty)

    return run


COMMANDS: list[Command] = []


def submit_many_prebuilt() -> None:
    OrderBook("X", N).submit_many(COMMANDS)


def main() -> None:
    COMMANDS.extend(Command.new(i, 7, "buy", 1000 - (i & 63), 1) for i in range(1, N + 1))
    loop = best_ns_per_iteration(empty_loop)
    call = best_ns_per_iteration(empty_python_call) - loop
    print(f"N={N}, best of {REPEATS}; ns per iteration, loop overhead ({loop:.1f} ns) removed")
    print(f"  {'empty Python function, 5 args':42s} {call:7.1f}   1.00x")
    cases = [
        ("new_order, rests (2 events)", new_order_resting),
        ("new_order + 3 keyword args", new_order_keywords),
        ("new_order, crossing (avg 3 events)", new_order_crossing),
        ("new_order + reading event.qty", new_order_reading_events),
        ("cancel of unknown id (1 event)", cancel_unknown),
        ("Command.new (no matching)", build_commands),
        ("submit_many, per command (2 events)", submit_many_prebuilt),
    ]
    for name, run in cases:
        cost = best_ns_per_iteration(run) - loop
        print(f"  {name:42s} {cost:7.1f}  {cost / call:5.2f}x")
    bare = best_ns_per_iteration(agent_steps(submit=False))
    full = best_ns_per_iteration(agent_steps(submit=True))
    print(
        f"minimal agent step: {bare:.0f} ns without the order, {full:.0f} ns with new_order "
        f"({(full - bare) / full:.0%} of the step in the binding and the engine)"
    )


if __name__ == "__main__":
    main()
