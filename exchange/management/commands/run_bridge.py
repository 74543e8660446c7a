"""Run the bridge: the engine's market data and executions to the browsers' WebSockets."""

import asyncio
import logging
import signal

import redis
from django.core.management.base import BaseCommand

from exchange.live.bridge import Bridge

log = logging.getLogger("flashbook.bridge")
RESTART_DELAY = 1.0


class Command(BaseCommand):
    help = (
        "Push every symbol's market data (conflated book frames, every trade), the watched "
        "accounts' executions, the simulation status and the agent leaderboard to the Channels "
        "groups the WebSocket consumers read. SIGINT/SIGTERM stop it. If Redis goes away it "
        "starts afresh once Redis answers again (browsers then resync from new snapshots)."
    )

    def handle(self, *args, **options):
        asyncio.run(self._run())

    async def _run(self) -> None:
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        current: list[Bridge] = []

        def stop() -> None:
            stopping.set()
            for bridge in current:
                bridge.stop()

        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop)
        while not stopping.is_set():
            bridge = Bridge()
            current[:] = [bridge]
            log.info("bridge: starting")
            try:
                await bridge.run()
            except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
                log.warning(
                    "bridge: Redis failed (%s); starting afresh in %.0f s", exc, RESTART_DELAY
                )
                await asyncio.sleep(RESTART_DELAY)
                continue
            log.info("bridge: stopped after %d frames", bridge.frames_sent)
