"""Run the Rust matching-engine worker for some or all instruments."""

import json
import signal

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from exchange.selectors import instrument_symbols_enabled


class Command(BaseCommand):
    help = (
        "Match orders from the Redis journals of the given symbols (default: every enabled "
        "instrument). SIGINT/SIGTERM stop it cleanly: the batch finishes, output is flushed and "
        "a snapshot written."
    )

    def add_arguments(self, parser):
        parser.add_argument("--symbols", help="Comma-separated symbols, e.g. ACME,GLOBEX.")
        parser.add_argument("--batch-size", type=int, default=2000)
        parser.add_argument(
            "--snapshot-every", type=int, default=100_000, help="Commands between snapshots."
        )
        parser.add_argument(
            "--snapshot-interval", type=float, default=30.0, help="Seconds between snapshots."
        )
        parser.add_argument(
            "--exit-when-drained",
            action="store_true",
            help="Stop once every journal is drained (benchmarks, batch replays).",
        )

    def handle(self, *args, **options):
        import flashbook_engine

        if options["symbols"]:
            symbols = [s.strip() for s in options["symbols"].split(",") if s.strip()]
        else:
            symbols = instrument_symbols_enabled()
        if not symbols:
            raise CommandError(
                "No symbols to serve: pass --symbols or enable an instrument in the admin."
            )
        self.stderr.write(f"engine: serving {', '.join(symbols)}")
        # The worker handles SIGINT and SIGTERM itself (finish the batch, flush, snapshot).
        # Python's SIGINT handler would also fire and raise KeyboardInterrupt the moment
        # run_worker returns, so a clean stop would end in a traceback and a non-zero exit.
        previous_sigint = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            reports = flashbook_engine.run_worker(
                settings.REDIS_URL,
                settings.FLASHBOOK_REDIS_PREFIX,
                symbols,
                batch_size=options["batch_size"],
                snapshot_every=options["snapshot_every"],
                snapshot_interval=options["snapshot_interval"],
                exit_when_drained=options["exit_when_drained"],
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        finally:
            signal.signal(signal.SIGINT, previous_sigint)
        for report in reports:
            self.stdout.write(json.dumps(report))
