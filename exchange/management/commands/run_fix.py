"""Run the FIX 4.4 acceptor: order entry and market data for FIX engines (exchange/fix)."""

import asyncio
import logging
import os
import signal
import sys

from django.conf import settings
from django.core.management.base import BaseCommand

from exchange.fix.service import FixService

log = logging.getLogger("flashbook.fix")


class Command(BaseCommand):
    help = (
        "Accept FIX 4.4 sessions (QuickFIX): logon with an API token as Password(554), orders "
        "through the gateway, executions from the bridge, market data. SIGINT/SIGTERM log the "
        "sessions out and stop it."
    )

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=settings.FLASHBOOK_FIX_PORT)
        parser.add_argument("--host", default=settings.FLASHBOOK_FIX_HOST)

    def handle(self, *args, **options):
        asyncio.run(self._run(options["host"], options["port"]))
        # Every session is logged out and its store written: leave without stopping QuickFIX's
        # acceptors or the interpreter's teardown, either of which crashed the process (SIGSEGV)
        # now and then on its way out (`FixFront.stop`).
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)

    async def _run(self, host: str, port: int) -> None:
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stopping.set)
        service = FixService(
            host=host,
            port=port,
            comp_id=settings.FLASHBOOK_FIX_COMP_ID,
            store_dir=settings.FLASHBOOK_FIX_DIR,
        )
        await service.start()
        log.info(
            "fix: listening on %s:%d as %s", host, service.port, settings.FLASHBOOK_FIX_COMP_ID
        )
        try:
            await stopping.wait()
        finally:
            await service.stop()
            log.info("fix: stopped")
