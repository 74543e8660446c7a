"""Per symbol: the journal, how far the engine and the recorder are behind, and events/s."""

import json
import time

from django.core.management.base import BaseCommand, CommandError

from exchange.listing import of_shard, shard_argument
from exchange.operations import (
    EVENTS_WINDOW_S,
    SymbolStatus,
    consumer_idle_ms,
    exchange_status,
)
from exchange.selectors import instrument_symbols_enabled

COLUMNS = (
    ("symbol", 8),
    ("journal", 10),
    ("engine lag", 12),
    ("oldest", 9),
    ("recorder lag", 13),
    ("pending", 8),
    ("recorders", 10),
    ("events/s", 10),
    ("orders", 8),
    ("state", 10),
)


def _seconds(ms: int) -> str:
    return f"{ms / 1000:.1f}s" if ms else "-"


def _row(status: SymbolStatus) -> list[str]:
    if not status.engine_seen:
        state = "no engine"
    else:
        state = "halted" if status.engine_halted else "ok"
    lag = f"{status.engine_lag}{'+' if status.engine_lag_capped else ''}"
    return [
        status.symbol,
        str(status.journal_length),
        lag,
        _seconds(status.engine_lag_ms),
        str(status.recorder_lag),
        str(status.recorder_pending),
        str(status.recorder_consumers),
        f"{status.events_per_s:g}",
        str(status.engine_orders),
        state,
    ]


class Command(BaseCommand):
    help = (
        "Show, per symbol, the journal's length, the engine's lag (journal entries it has not "
        "applied, and the age of the oldest), the recorder's lag (events not in the database "
        "yet, entries read but not acknowledged, consumers in the group) and events/s over the "
        "last seconds. --check exits 1 when an engine is missing or too far behind."
    )

    def add_arguments(self, parser):
        parser.add_argument("--symbols", help="Comma-separated symbols (default: every enabled).")
        parser.add_argument(
            "--shard",
            type=shard_argument,
            help="I/N: the enabled symbols engine shard I of N serves (its health check).",
        )
        parser.add_argument("--json", action="store_true", help="One JSON object per symbol.")
        parser.add_argument(
            "--window", type=float, default=EVENTS_WINDOW_S, help="Seconds behind events/s."
        )
        parser.add_argument(
            "--watch", type=float, metavar="SECONDS", help="Print again every SECONDS."
        )
        parser.add_argument(
            "--check",
            action="store_true",
            help="Exit 1 if a symbol has no engine or its oldest unapplied command is older "
            "than --max-engine-lag seconds (a health check for engine containers).",
        )
        parser.add_argument("--max-engine-lag", type=float, default=10.0)
        parser.add_argument(
            "--check-recorder",
            metavar="CONSUMER",
            help="Exit 1 unless the recorder CONSUMER has read an event stream within "
            "--max-recorder-idle seconds (a health check for recorder containers).",
        )
        parser.add_argument("--max-recorder-idle", type=float, default=30.0)
        parser.add_argument("--quiet", action="store_true", help="Print nothing but problems.")

    def handle(self, *args, **options):
        symbols = None
        if options["symbols"]:
            symbols = [s.strip() for s in options["symbols"].split(",") if s.strip()]
        if options["shard"]:
            symbols = of_shard(symbols or instrument_symbols_enabled(), options["shard"])
        if options["window"] <= 0:
            raise CommandError("--window must be positive.")
        if options["quiet"] and not options["check"]:
            statuses = []  # only --check-recorder: the table is not needed
        else:
            statuses = exchange_status(symbols, window_s=options["window"])
        while not options["quiet"]:
            if options["json"]:
                for status in statuses:
                    self.stdout.write(json.dumps(status.as_dict()))
            else:
                self._table(statuses)
            if not options["watch"]:
                break
            time.sleep(options["watch"])
            self.stdout.write("")
            statuses = exchange_status(symbols, window_s=options["window"])
        if options["check"]:
            self._check(statuses, options["max_engine_lag"])
        if options["check_recorder"]:
            idle = consumer_idle_ms(options["check_recorder"], symbols)
            if idle is None:
                raise CommandError(f"no recorder {options['check_recorder']!r} in the group")
            if idle > options["max_recorder_idle"] * 1000:
                raise CommandError(f"recorder idle for {idle / 1000:.1f}s", returncode=1)

    def _table(self, statuses: list[SymbolStatus]) -> None:
        if not statuses:
            self.stdout.write("No instruments: enable one in the admin or pass --symbols.")
            return
        self.stdout.write("".join(name.ljust(width) for name, width in COLUMNS).rstrip())
        for status in statuses:
            cells = _row(status)
            line = "".join(
                cell.ljust(width) for cell, (_, width) in zip(cells, COLUMNS, strict=True)
            )
            self.stdout.write(line.rstrip())

    def _check(self, statuses: list[SymbolStatus], max_lag_s: float) -> None:
        problems = [
            f"{s.symbol}: no engine has served it" for s in statuses if not s.engine_seen
        ] + [
            f"{s.symbol}: oldest unapplied command is {s.engine_lag_ms / 1000:.1f}s old"
            for s in statuses
            if s.engine_lag_ms > max_lag_s * 1000
        ]
        if problems:
            raise CommandError("; ".join(problems), returncode=1)
