"""Run the research runs queued from the site, one at a time (agents/research_runs/worker.py)."""

import asyncio
import signal

from django.core.management.base import BaseCommand, CommandError

from agents.research_runs.services import LEASE_S
from agents.research_runs.worker import Worker


class Command(BaseCommand):
    help = (
        "Take research runs queued from the site (Research, staff only) from the database and "
        "run each as `manage.py simulate`, one at a time, storing its progress. Runs left by a "
        "dead worker start over. SIGINT/SIGTERM stop the current run and queue it again."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--poll", type=float, default=1.0, help="Seconds between looks at the queue."
        )
        parser.add_argument(
            "--lease", type=float, default=LEASE_S,
            help="Seconds without a heartbeat after which another host's run is taken over.",
        )  # fmt: skip
        parser.add_argument(
            "--once", action="store_true", help="Exit after one run (or at once if none)."
        )

    def handle(self, *args, **options):
        if options["poll"] <= 0 or options["lease"] <= 0:
            raise CommandError("--poll and --lease must be positive.")
        worker = Worker(poll_s=options["poll"], lease_s=options["lease"], once=options["once"])

        async def main():
            loop = asyncio.get_running_loop()
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(signum, worker.request_stop)
            await worker.run()

        asyncio.run(main())
