"""Run the recorder: project the engine's event streams into the database."""

import json
import signal

from django.core.management.base import BaseCommand, CommandError

from exchange.recorder import Recorder


class Command(BaseCommand):
    help = (
        "Record orders, fills, trades, positions and cash from the event streams of the given "
        "symbols (default: every enabled instrument) as one consumer of the recorders' group. "
        "Several may run at once. SIGINT/SIGTERM stop it cleanly: the entries it has read are "
        "recorded and acknowledged first, nothing else is read."
    )

    def add_arguments(self, parser):
        parser.add_argument("--symbols", help="Comma-separated symbols, e.g. ACME,GLOBEX.")
        parser.add_argument(
            "--consumer", help="Consumer name in the group (default: host name and process id)."
        )
        parser.add_argument(
            "--batch", type=int, default=50, help="Stream entries per read and per transaction."
        )
        parser.add_argument(
            "--min-interval-ms",
            type=int,
            default=500,
            help="Under load, wait this long after a transaction before reading the next "
            "entries, so that each transaction records more of them (measured: half the "
            "recorder's CPU per order at 25 ms under `make bench-api`; at the demo market's "
            "~25 orders/s, 200 ms instead of 25 took the recorder from ~19 %% to ~7 %% of a core, "
            "500 ms to ~4 %%, in `make bench-idle`: the ORM's work per transaction dominates). "
            "Idle streams are read at once, and so is a read that filled a whole batch.",
        )
        parser.add_argument(
            "--until-idle",
            action="store_true",
            help="Stop once every stream is recorded and nothing is left unacknowledged.",
        )
        parser.add_argument(
            "--claim-idle-ms",
            type=int,
            default=30_000,
            help="Take over another recorder's unacknowledged entries after this long.",
        )

    def handle(self, *args, **options):
        symbols = None
        if options["symbols"]:
            symbols = [s.strip() for s in options["symbols"].split(",") if s.strip()]
        if options["batch"] < 1:
            raise CommandError("--batch must be at least 1.")
        try:
            recorder = Recorder(
                symbols,
                consumer=options["consumer"],
                batch=options["batch"],
                claim_idle_ms=options["claim_idle_ms"],
                min_interval_ms=options["min_interval_ms"],
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        if not recorder.instruments and symbols is None and options["until_idle"]:
            raise CommandError("No symbols to record: pass --symbols or enable an instrument.")

        def stop(signum, frame):
            recorder.stop()

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        stats = recorder.run(until_idle=options["until_idle"])
        self.stdout.write(
            json.dumps(
                {
                    "recorder": recorder.consumer,
                    "entries": stats.entries,
                    "events": stats.events,
                    "trades": stats.trades,
                    "duplicates": stats.duplicates,
                    "claimed": stats.claimed,
                }
            )
        )
