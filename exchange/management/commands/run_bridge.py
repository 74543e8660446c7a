"""Run the bridge: the engine's market data and executions to the browsers' WebSockets."""

import asyncio
import logging
import signal

from django.core.management.base import BaseCommand

from exchange.bridge import Bridge

log = logging.getLogger("flashbook.bridge")


class Command(BaseCommand):
    help = (
        "Push every symbol's market data (conflated book frames, every trade), the watched "
        "accounts' executions, the simulation status and the agent leaderboard to the Channels "
        "groups the WebSocket consumers read. SIGINT/SIGTERM stop it."
    )

    def handle(self, *args, **options):
        asyncio.run(self._run())

    async def _run(self) -> None:
        bridge = Bridge()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, bridge.stop)
        log.info("bridge: starting")
        await bridge.run()
        log.info("bridge: stopped after %d frames", bridge.frames_sent)
