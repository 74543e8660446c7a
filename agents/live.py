"""The simulation in the browser: `/ws/sim/` (logged-in users) gets the simulation's status and
the agents' leaderboard — the current state as it connects, then the frames the bridge relays to
the group `sim`. The bridge is the exchange's one fan-out to browsers; what it relays for the
simulation is this app's `SIM_RELAY` (registered in `AgentsConfig.ready`): the notices the
services publish on `keys.sim_channel()` and, once a second while someone watches, the
leaderboard. Frame formats: `docs/protocol.md`, "WebSocket frames"."""

from __future__ import annotations

import json
import logging

from channels.db import database_sync_to_async

from agents import keys, selectors
from exchange.live.bridge import Relay
from exchange.live.consumers import PrivateConsumer

logger = logging.getLogger("flashbook.agents")

SIM_GROUP = "sim"
LEADERBOARD_INTERVAL = 1.0


def sim_notice_frame(data: str) -> dict | None:
    """A `sim` frame from a notice on the simulation's channel (None: not one)."""
    try:
        frame = json.loads(data)
    except ValueError:
        frame = None
    if not isinstance(frame, dict):
        logger.warning("ignoring a malformed sim notice %r", data[:200])
        return None
    return frame | {"type": "sim"}


def leaderboard_frame() -> dict:
    return {"type": "leaderboard", "rows": selectors.leaderboard()}


SIM_RELAY = Relay(
    group=SIM_GROUP,
    channel=keys.sim_channel,
    on_notice=sim_notice_frame,
    poll=leaderboard_frame,
    interval=LEADERBOARD_INTERVAL,
)


def sim_state() -> list[dict]:
    """What a sim socket is sent as it connects: the status, then the leaderboard."""
    return [
        {"type": "sim", "available": True, "seq": 0, **selectors.sim_status()},
        leaderboard_frame() | {"seq": 0},
    ]


class SimConsumer(PrivateConsumer):
    group: str | None = None

    async def joined(self, user) -> None:
        self.group = SIM_GROUP
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        for frame in await database_sync_to_async(sim_state)():
            await self.send(text_data=json.dumps(frame, default=str, separators=(",", ":")))

    async def disconnect(self, code):
        if self.group is not None:
            await self.channel_layer.group_discard(self.group, self.channel_name)
