"""Run the FIX 4.4 acceptor: order entry and market data for FIX engines (exchange/fix)."""

import asyncio
import logging
import signal

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
        import uvloop

        # uvloop: its socket writes keep the interpreter lock (non-blocking sends in C), where
        # asyncio's release it and then queue for it behind QuickFIX's threads and the database
        # thread — measured, that wait was a fifth of the loop's time under load.
        uvloop.run(self._run(options["host"], options["port"]))

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
