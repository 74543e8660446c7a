"""Run the Rust matching-engine worker for some or all instruments."""

import json
import signal

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from exchange.listing import shard_argument


class Command(BaseCommand):
    help = (
        "Match orders from the Redis journals of the enabled instruments: those of one shard "
        "(--shard I/N; all of them by default), including instruments enabled while it runs, or "
        "a fixed list (--symbols). SIGINT/SIGTERM stop it cleanly: the batch finishes, output "
        "is flushed and a snapshot written."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--symbols", help="Comma-separated symbols, e.g. ACME,GLOBEX: only these, fixed."
        )
        parser.add_argument(
            "--shard",
            type=shard_argument,
            default=(1, 1),
            help="I/N: serve the enabled instruments of shard I of N (the symbol's Redis Cluster "
            "slot modulo N), also those enabled later. Default 1/1: all of them.",
        )
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
        import redis

        from exchange.errors import ExchangeError
        from exchange.listing import of_shard, registry_sync, rules_sync

        if options["symbols"]:
            symbols = [s.strip() for s in options["symbols"].split(",") if s.strip()]
            shard = None
            self.stderr.write(f"engine: serving {', '.join(symbols)}")
        else:
            symbols, shard = [], options["shard"]
            try:
                # The registry from the database: a Redis that lost its keys gets it back.
                enabled = registry_sync()
            except redis.RedisError as exc:
                raise CommandError(f"Redis cannot be reached: {exc}") from exc
            mine = of_shard(enabled, shard)
            try:
                rules_sync(mine)  # the price bands, should a journal predate them
            except ExchangeError as exc:
                raise CommandError(exc.message) from exc
            self.stderr.write(
                f"engine: shard {shard[0]}/{shard[1]}, serving {', '.join(mine) or 'nothing yet'} "
                "and the instruments of this shard enabled later"
            )
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
                shard=shard,
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        finally:
            signal.signal(signal.SIGINT, previous_sigint)
        for report in reports:
            self.stdout.write(json.dumps(report))
