"""Run the trading agents: every agent configured in the admin for the served instruments."""

import asyncio
import json
import random
import signal

from django.core.management.base import BaseCommand, CommandError

from agents.runner import Runner


class Command(BaseCommand):
    help = (
        "Run the agents configured in the admin (default: on every enabled instrument), each on "
        "its own random clock, trading through the gateway. Admin changes are picked up within "
        "a second. SIGINT/SIGTERM cancel the agents' open orders, then exit."
    )

    def add_arguments(self, parser):
        parser.add_argument("--symbols", help="Comma-separated symbols, e.g. ACME,GLOBEX.")
        parser.add_argument(
            "--seed",
            type=int,
            help="Master seed: each agent's generator is derived from it and the agent's name "
            "(default: a random one, logged).",
        )
        parser.add_argument(
            "--threads",
            type=int,
            default=1,
            help="Threads calling the gateway (each has its own database connection).",
        )
        parser.add_argument(
            "--duration", type=float, help="Stop (cleanly) after this many seconds."
        )

    def handle(self, *args, **options):
        symbols = None
        if options["symbols"]:
            symbols = [s.strip() for s in options["symbols"].split(",") if s.strip()]
        if options["threads"] < 1:
            raise CommandError("--threads must be at least 1.")
        seed = (
            options["seed"]
            if options["seed"] is not None
            else random.SystemRandom().randrange(2**31)
        )
        runner = Runner(
            symbols=symbols, seed=seed, threads=options["threads"], duration=options["duration"]
        )

        async def main():
            loop = asyncio.get_running_loop()
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(signum, runner.request_stop)
            return await runner.run()

        with asyncio.Runner(loop_factory=_loop_factory()) as event_loop:
            stats = event_loop.run(main())
        self.stdout.write(
            json.dumps(
                {
                    "runner": runner.id,
                    "seed": seed,
                    "wakes": stats.wakes,
                    "orders": stats.orders,
                    "cancels": stats.cancels,
                    "replaces": stats.replaces,
                    "refused": stats.refused,
                    "errors": stats.errors,
                }
            )
        )


def _loop_factory():
    """uvloop's event loop when it is installed (it comes with uvicorn[standard], as for the web
    workers): the runner spends a good part of its time in the loop's own scheduling."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop
