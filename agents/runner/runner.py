"""The agents runner: every agent of the served instruments on its own Poisson clock, in one
asyncio loop.

Tasks:

* one per agent — sleep an exponential delay drawn from the agent's own generator, look at the
  market, ask the strategy, send its actions through the gateway (`Desk` threads), in order;
* the event follower — reads the instruments' event streams from where the database's state
  was taken (the recorder's cursor) and keeps every agent's cash, position and open orders and
  the markets' recent trades true;
* the simulation watcher — pause/resume (the state in Redis), shocks (a stream, each applied
  once), completing a reset once the recorder has recorded it; woken by the notices of the
  sim channel;
* the config watcher — picks up admin changes (new, edited, enabled, disabled, deleted agents)
  within a second, and refreshes the accounts the gateway checks;
* the status publisher — each agent's status, the runner's heartbeat and the fundamentals'
  state in Redis, twice a second.

Stopping (SIGINT/SIGTERM): the agents finish what they are doing and stop waking, every agent's
open orders are cancelled, the runner waits (a few seconds at most) for the engine to confirm,
publishes a last status and exits.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import time
import uuid
from dataclasses import dataclass

import flashbook_engine
import redis
import redis.asyncio as aioredis
from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connections

from agents import keys
from agents import selectors as agent_selectors
from agents import services as agent_services
from agents.runner.agent import OPPOSITE, LiveAgent, derive_seed
from agents.runner.desk import Desk
from agents.runner.market import SymbolMarket
from agents.strategies import Cancel, Place, Replace
from exchange import redis_clients
from exchange import selectors as exchange_selectors
from exchange.errors import ExchangeError, Unavailable
from exchange.orders import gateway
from exchange.orders.gateway import OrderRequest
from exchange.protocol import keys as exchange_keys

logger = logging.getLogger("flashbook.agents")

SIM_POLL_S = 0.2  # while a reset is pending (its completion is not announced)
# Otherwise the state is read again on every notice of the sim channel (each change is
# published there), and at least this often should a notice be lost (a reconnect): polling the
# state and the shocks 5 times a second was ~0.5 % of a core of the demo market's runner.
SIM_IDLE_POLL_S = 5.0
CONFIG_POLL_S = 1.0
# Every CONFIG_POLL_S the configs' fingerprint (`agent_configs_version`, ~0.6 ms) is read; the
# configs with their accounts and instruments (~5 ms, and the runner's loop over them) only when
# it changed, after a notice of the sim channel (a reset gives the accounts their cash back), or
# every CONFIG_REFRESH_S: the accounts' cash and standing, which the gateway checks, are then at
# most that old. Read in full every second, they cost ~5 ms of CPU a second (SQLite, 42 agents).
CONFIG_REFRESH_S = 5.0
# Well within `agents.selectors.STALE_MS` (3 s). Twice a second, the 42 statuses of the demo
# market were written twice as often as the leaderboard is sent.
STATUS_EVERY_S = 1.0
STOP_CONFIRM_S = 5.0
# After a read of the event streams that took at most EVENTS_FEW entries (a light load), the
# next waits EVENTS_PAUSE_S, so that each read takes several: read as each came, the demo
# market's ~45 entries a second were ~45 reads a second, each ~0.2 ms of the runner's CPU
# (cProfile on the thread's CPU clock). The agents' view of their orders, of the trades and
# (`SymbolMarket.refresh_book`) of the book is then up to that much later. Under load the next
# read follows at once, as before (pausing after every read short of a full page, one of two
# `make bench-agents` runs had 53 cancels refused, of orders already done; none before).
EVENTS_PAUSE_S = 0.05
EVENTS_FEW = 8
EVENTS_PAGE = 200


@dataclass
class RunnerStats:
    wakes: int = 0
    orders: int = 0  # NEWs the gateway took
    cancels: int = 0
    replaces: int = 0
    refused: int = 0
    errors: int = 0
    events: int = 0
    started: float = 0.0

    @property
    def commands(self) -> int:
        return self.orders + self.cancels + self.replaces


class Runner:
    def __init__(
        self,
        *,
        symbols: list[str] | None = None,
        seed: int = 0,
        threads: int = 1,
        duration: float | None = None,
    ):
        self.symbols = symbols
        self.seed = seed
        self.duration = duration
        self.desk = Desk(threads)
        self.id = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.agents: dict[str, LiveAgent] = {}
        self.by_account: dict[int, LiveAgent] = {}
        self.markets: dict[str, SymbolMarket] = {}
        self.skip_seq: dict[str, int] = {}  # events up to here are in the loaded state
        self.stream_ids: dict[str, str] = {}
        self.loops: dict[str, asyncio.Task] = {}
        self.sleeping: set[asyncio.Task] = set()  # agent loops between two wakes
        self.paused = False
        self.stopping = asyncio.Event()
        self.stats = RunnerStats()
        self.shock_id = "0-0"
        self.config_version: tuple | None = None
        self.configs_stale = asyncio.Event()  # read the configs in full at the next poll
        self.redis: aioredis.Redis | None = None
        self.cluster = redis_clients.is_cluster()

    def request_stop(self) -> None:
        self.stopping.set()

    # --- start ---------------------------------------------------------------------------------

    async def run(self) -> RunnerStats:
        # A socket timeout well above the event reads' 250 ms block: no read waits forever. The
        # journal's connection class: it sends a command without a task of its own.
        self.redis = redis_clients.aclient(
            settings.REDIS_URL,
            decode_responses=True,
            socket_timeout=10,
            **gateway.redis_connection_kwargs(settings.REDIS_URL),
        )
        self.stats.started = time.monotonic()
        try:
            await self._start()
            background = [
                asyncio.create_task(self._follow_events(), name="events"),
                asyncio.create_task(self._watch_sim(), name="sim"),
                asyncio.create_task(self._watch_configs(), name="configs"),
                asyncio.create_task(self._publish_status(), name="status"),
            ]
            for agent in self.agents.values():
                self._start_loop(agent)
            logger.info(
                "runner start id=%s seed=%d agents=%d symbols=%s threads=%d",
                self.id,
                self.seed,
                len(self.agents),
                ",".join(sorted(self.markets)),
                self.desk.threads,
            )
            try:
                await asyncio.wait_for(self.stopping.wait(), self.duration)
            except TimeoutError:
                self.stopping.set()
            await self._shutdown(background)
        finally:
            await self.redis.aclose()
            await asyncio.get_running_loop().run_in_executor(None, self.desk.close)
            # The gateway's database reads ran on asgiref's thread for sync code: close its
            # connection there.
            await sync_to_async(connections.close_all)()
        return self.stats

    async def _start(self) -> None:
        configs = await self.desk.call(agent_selectors.agent_configs_for_runner, self.symbols)
        self.config_version = await self.desk.call(
            agent_selectors.agent_configs_version, self.symbols
        )
        symbols = self.symbols or await self.desk.call(
            exchange_selectors.instrument_symbols_enabled
        )
        tail = await self.redis.xrevrange(keys.sim_shocks(), count=1)
        self.shock_id = tail[0][0] if tail else "0-0"
        instruments = {c.instrument.symbol: c.instrument for c in configs}
        opened = {}
        for symbol in symbols:
            instrument = instruments.get(symbol) or await self.desk.call(
                exchange_selectors.instrument_get, symbol
            )
            if instrument is None or not instrument.enabled:
                continue
            opened[symbol] = await self._open_market(instrument)
        for symbol, market in opened.items():
            await self._load_symbol(symbol, [c for c in configs if c.instrument.symbol == symbol])
            self.markets[symbol] = market
        raw = await self.redis.hgetall(keys.sim_state())
        self.paused = raw.get("state") == "paused"

    async def _open_market(self, instrument) -> SymbolMarket:
        """A symbol's market as the runner keeps it: its fundamental value from the saved state
        (or the reference price), and where in the shocks stream its own shocks start."""
        symbol = instrument.symbol
        raw = await self.redis.hget(keys.fundamentals(), symbol)
        state = json.loads(raw) if raw else None
        if state:
            floor = state.get("shock_id", "0-0")
        else:
            tail = await self.redis.xrevrange(keys.sim_shocks(), count=1)
            floor = tail[0][0] if tail else "0-0"
        # The shocks up to `shock_floor` are in the saved state (or, without one, in the
        # reference price the fundamental starts from); later ones are applied once read.
        self.shock_id = min(self.shock_id, floor, key=_id_key)
        market = SymbolMarket(
            symbol,
            book_key=exchange_keys.key("book", symbol),
            reference_ticks=instrument.price_to_ticks(instrument.reference_price),
            seed=derive_seed(self.seed, f"fundamental/{symbol}"),
            saved=state,
        )
        market.shock_floor = floor
        return market

    async def _load_symbol(self, symbol: str, configs: list) -> None:
        """Loads the agents of a symbol from the database at the recorder's cursor and finds
        where in the event stream to follow from."""
        for config in configs:
            self._add_agent(config)
        cursor, recorded = await self.desk.call(
            exchange_selectors.recorded_accounts, symbol, [c.account_id for c in configs]
        )
        for config in configs:
            agent = self.agents[config.name]
            if config.account_id in recorded:
                agent.load(recorded[config.account_id])
        self.skip_seq[symbol] = cursor
        self.stream_ids[symbol] = await self._stream_position(symbol, cursor)

    async def _stream_position(self, symbol: str, cursor: int) -> str:
        """The id after which the stream's entries hold every event above `cursor`."""
        key = exchange_keys.key("evt", symbol)
        end = "+"
        while True:
            page = await self.redis.xrevrange(key, max=end, count=100)
            if not page:
                return "0-0"
            for entry_id, fields in page:
                if int(fields["last"]) <= cursor:
                    return entry_id
            end = f"({page[-1][0]}"

    def _add_agent(self, config) -> LiveAgent:
        agent = LiveAgent(config, self.seed)
        self.agents[agent.name] = agent
        self.by_account[agent.account_id] = agent
        return agent

    def _start_loop(self, agent: LiveAgent) -> None:
        self.loops[agent.name] = asyncio.create_task(self._agent_loop(agent), name=agent.name)

    # --- the agents ----------------------------------------------------------------------------

    async def _agent_loop(self, agent: LiveAgent) -> None:
        market = self.markets[agent.symbol]
        task = asyncio.current_task()
        while not self.stopping.is_set() and self.agents.get(agent.name) is agent:
            delay = agent.rng.expovariate(agent.rate)
            # A plain sleep, which the stop cancels (`_shutdown`): waiting for the stop with a
            # timeout (`wait_for`) made a task and a timeout per wake.
            self.sleeping.add(task)
            try:
                await asyncio.sleep(delay)
            finally:
                self.sleeping.discard(task)
            if self.stopping.is_set():
                break
            if not agent.enabled or agent.stopped or self.paused:
                continue
            try:
                await self._wake(agent, market)
            except Unavailable as exc:
                self.stats.errors += 1
                logger.warning("agent %s: %s", agent.name, exc.message)
                await asyncio.sleep(0.5)
            except Exception:
                self.stats.errors += 1
                logger.exception("agent %s failed a wake", agent.name)
                await asyncio.sleep(0.5)

    async def _wake(self, agent: LiveAgent, market: SymbolMarket) -> None:
        self.stats.wakes += 1
        await market.refresh_book(self.redis)
        if market.closed:
            return
        if agent.below_bankroll(market.mark_ticks()):
            await self._stop_agent(agent, "equity below the minimum bankroll")
            return
        now_ns = time.time_ns()
        for action in agent.strategy.decide(market.view(now_ns), agent.state):
            if self.stopping.is_set() or self.paused or agent.stopped or not agent.enabled:
                return
            await self._act(agent, action, now_ns)

    async def _act(self, agent: LiveAgent, action, now_ns: int) -> None:
        if isinstance(action, Place):
            market_order = action.price is None
            request = OrderRequest(
                symbol=agent.symbol,
                side=action.side,
                quantity=agent.lot_size * action.qty,
                order_type="market" if market_order else "limit",
                time_in_force=None if market_order else action.tif,
                price=None if market_order else agent.tick_size * action.price,
                post_only=action.post_only,
                stp="cancel_newest",
            )
            agent.submitting()
            try:
                # The orders of every agent in flight at once share the journal's round trips.
                outcome = await gateway.order_submit(account=agent.account, request=request)
            except ExchangeError as exc:
                agent.not_submitted()
                await self._refused(agent, exc)
                return
            except BaseException:
                agent.not_submitted()
                raise
            # The journal's record: all a cancel or replace of it needs (no model instance).
            agent.submitted(outcome.record or outcome.order, action, now_ns)
            self.stats.orders += 1
            return
        order = agent.orders.get(action.key)
        if order is None:  # it was done meanwhile (the events said so)
            agent.on_done(action.key)
            return
        try:
            if isinstance(action, Cancel):
                await gateway.order_cancel(account=agent.account, order=order)
                self.stats.cancels += 1
            elif isinstance(action, Replace):
                await gateway.order_replace(
                    account=agent.account,
                    order=order,
                    price=None if action.price is None else agent.tick_size * action.price,
                    quantity=None if action.qty is None else agent.lot_size * action.qty,
                )
                self.stats.replaces += 1
        except ExchangeError as exc:
            await self._refused(agent, exc)

    async def _refused(self, agent: LiveAgent, exc: ExchangeError) -> None:
        self.stats.refused += 1
        if isinstance(exc, Unavailable):
            raise exc
        if exc.code == "insufficient_equity":
            # The gateway's check reads the database; ours the events. Either way: stop.
            await self._stop_agent(agent, "the gateway refused: equity below the minimum bankroll")
        elif exc.code not in ("instrument_halted", "order_not_open"):
            logger.debug("agent %s refused code=%s %s", agent.name, exc.code, exc.message)

    async def _stop_agent(self, agent: LiveAgent, why: str) -> None:
        if agent.stopped:
            return
        agent.stopped = True
        logger.warning("agent %s stopped: %s", agent.name, why)
        await self._cancel_all(agent)

    async def _cancel_all(self, agent: LiveAgent) -> None:
        try:
            await gateway.order_cancel_all(account=agent.account, symbol=agent.symbol)
        except ExchangeError as exc:
            logger.warning("agent %s: cancel-all failed: %s", agent.name, exc.message)

    # --- the event streams ---------------------------------------------------------------------

    async def _read_events(self, streams: dict[str, str]) -> list:
        """One XREAD of the streams; on a cluster one per slot (the symbols' streams are in
        different slots, which no command spans), concurrently, each blocking as the one would."""
        if not self.cluster:
            return await self.redis.xread(streams, count=EVENTS_PAGE, block=250) or []
        groups = redis_clients.by_slot(streams)
        replies = await asyncio.gather(
            *(
                self.redis.xread({k: streams[k] for k in group}, count=EVENTS_PAGE, block=250)
                for group in groups.values()
            )
        )
        return [stream for reply in replies for stream in reply or []]

    async def _follow_events(self) -> None:
        busy = False
        while True:
            if not busy:
                await asyncio.sleep(EVENTS_PAUSE_S)
            streams = {exchange_keys.key("evt", s): self.stream_ids[s] for s in self.markets}
            if not streams:  # no instrument listed yet
                busy = False
                continue
            try:
                reply = await self._read_events(streams)
            except (redis.RedisError, *redis_clients.FAILOVER_ERRORS) as exc:
                logger.warning("event stream read failed: %r", exc)
                await asyncio.sleep(0.5)
                continue
            busy = sum(len(entries) for _, entries in reply or []) > EVENTS_FEW
            for key, entries in reply or []:
                symbol = exchange_keys.symbol_of(key, "evt")
                for entry_id, fields in entries:
                    self._apply_entry(symbol, entry_id, fields)
                    self.stream_ids[symbol] = entry_id

    def _apply_entry(self, symbol: str, entry_id: str, fields: dict) -> None:
        market = self.markets[symbol]
        last = int(fields.get("last", 0))
        market.stream_seq = max(market.stream_seq, last)  # the book key is at least this new
        skip = self.skip_seq.get(symbol, 0)
        if last <= skip:
            return
        time_ns = int(entry_id.partition("-")[0]) * 1_000_000
        agents = self.by_account
        for event in flashbook_engine.decode_events(fields.get("e", "")):
            if event.seq <= skip:
                continue
            self.stats.events += 1
            kind = event.kind
            if kind == "level":
                continue
            if kind == "trade":
                taker_side = event.aggressor
                market.on_trade(time_ns, event.price, event.qty, taker_side)
                wash = event.maker_account == event.taker_account
                maker = agents.get(event.maker_account)
                if maker is not None and maker.symbol == symbol:
                    maker.on_trade(
                        OPPOSITE[taker_side],
                        event.price,
                        event.qty,
                        event.maker_order_id,
                        wash,
                        event.maker_fee_bps,
                    )
                taker = agents.get(event.taker_account)
                if taker is not None and taker.symbol == symbol:
                    taker.on_trade(
                        taker_side,
                        event.price,
                        event.qty,
                        event.taker_order_id,
                        wash,
                        event.taker_fee_bps,
                    )
            elif kind == "cancelled":
                agent = agents.get(event.account)
                if agent is not None and agent.symbol == symbol:
                    agent.on_done(event.order_id)
            elif kind == "replaced":
                agent = agents.get(event.account)
                if agent is not None and agent.symbol == symbol:
                    agent.on_replaced(event.order_id, event.price, event.qty)
            elif kind == "rejected":
                agent = agents.get(event.account)
                if agent is not None and agent.symbol == symbol:
                    agent.on_rejected(event.command, event.order_id, event.reason)
            elif kind == "status":
                if event.status == "RESET":
                    market.on_reset()
                    for agent in self.agents.values():
                        if agent.symbol == symbol:
                            agent.on_reset()
                elif event.status in ("HALTED", "RESUMED"):
                    market.halted = event.status == "HALTED"
                elif event.status in ("PAUSED", "PAUSE_ENDED"):
                    market.paused = event.status == "PAUSED"

    # --- the simulation state ------------------------------------------------------------------

    async def _watch_sim(self) -> None:
        next_reset_check = 0.0
        notices = None
        while True:
            raw = {}
            try:
                if notices is None:
                    # Subscribed before the state is read: no change falls in between.
                    notices = self.redis.pubsub(ignore_subscribe_messages=True)
                    await notices.subscribe(keys.sim_channel())
                raw = await self.redis.hgetall(keys.sim_state())
                self.paused = raw.get("state") == "paused"
                shocks = await self.redis.xrange(keys.sim_shocks(), min=f"({self.shock_id}")
                for shock_id, shock in shocks:
                    market = self.markets.get(shock["symbol"])
                    if market is not None and _id_key(shock_id) > _id_key(market.shock_floor):
                        market.shock(float(shock["pct"]), time.time_ns())
                        logger.info("shock symbol=%s pct=%s", shock["symbol"], shock["pct"])
                    self.shock_id = shock_id
                if raw.get("reset_pending") and time.monotonic() >= next_reset_check:
                    next_reset_check = time.monotonic() + 0.5
                    await self.desk.call(agent_services.sim_reset_complete)
            except (redis.RedisError, ExchangeError) as exc:
                logger.warning("sim state read failed: %r", exc)
                notices = await _unsubscribed(notices)
            wait = SIM_POLL_S if notices is None or raw.get("reset_pending") else SIM_IDLE_POLL_S
            try:
                if notices is None:
                    await asyncio.sleep(wait)
                else:
                    # Any notice: the state is read again (and the other notices with it), and
                    # the configs in full (a reset gives the accounts their cash back).
                    if await notices.get_message(timeout=wait) is not None:
                        self.configs_stale.set()
                    while await notices.get_message(timeout=0) is not None:
                        pass
            except redis.RedisError as exc:
                logger.warning("sim notices lost: %r", exc)
                notices = await _unsubscribed(notices)

    # --- configuration changes -----------------------------------------------------------------

    async def _watch_configs(self) -> None:
        read_at = time.monotonic()
        while True:
            await asyncio.sleep(CONFIG_POLL_S)
            try:
                version = await self.desk.call(agent_selectors.agent_configs_version, self.symbols)
                if (
                    version != self.config_version
                    or self.configs_stale.is_set()
                    or time.monotonic() - read_at >= CONFIG_REFRESH_S
                ):
                    self.configs_stale.clear()
                    read_at = time.monotonic()
                    await self._refresh_configs()
                    # A change between the two reads shows as a new version next time.
                    self.config_version = version
            except Exception:
                logger.exception("config refresh failed")

    async def _refresh_configs(self) -> None:
        configs = await self.desk.call(agent_selectors.agent_configs_for_runner, self.symbols)
        seen = set()
        added = []
        listed = {c.instrument.symbol: c.instrument for c in configs}
        for symbol, instrument in listed.items():
            if symbol not in self.markets:  # an instrument enabled while the runner runs
                mine = [c for c in configs if c.instrument.symbol == symbol]
                await self._list_market(instrument, mine)
        for config in configs:
            symbol = config.instrument.symbol
            market = self.markets[symbol]
            market.reference_ticks = config.instrument.price_to_ticks(
                config.instrument.reference_price
            )
            seen.add(config.name)
            agent = self.agents.get(config.name)
            if agent is not None and agent.config_pk != config.pk:
                await self._retire(agent)  # another agent took the name
                agent = None
            if agent is None:
                added.append(config)
                continue
            was_enabled = agent.enabled
            if config.updated_at != agent.updated_at:
                agent.apply_config(config)
                logger.info("agent %s: configuration changed", agent.name)
            else:
                agent.apply_account(config.account)  # fresh cash and limits
            if was_enabled and not agent.enabled:
                await self._cancel_all(agent)
        for agent in [a for name, a in self.agents.items() if name not in seen]:
            await self._retire(agent)
        for config in added:
            symbol = config.instrument.symbol
            # A new agent's account has not traded since the database recorded it.
            _, recorded = await self.desk.call(
                exchange_selectors.recorded_accounts, symbol, [config.account_id]
            )
            agent = self._add_agent(config)
            if config.account_id in recorded:
                agent.load(recorded[config.account_id])
            self._start_loop(agent)
            logger.info("agent %s: added", agent.name)

    async def _list_market(self, instrument, configs: list) -> None:
        """Takes on an instrument enabled while the runner runs, with its agents: they start
        trading within about a second of the listing (CONFIG_POLL_S)."""
        market = await self._open_market(instrument)
        await self._load_symbol(instrument.symbol, configs)
        self.markets[instrument.symbol] = market  # its event stream is followed from here on
        for config in configs:
            self._start_loop(self.agents[config.name])
        logger.info("market %s: listed, %d agents", instrument.symbol, len(configs))

    async def _retire(self, agent: LiveAgent) -> None:
        """An agent whose config is gone: its orders are cancelled and it is forgotten."""
        self.agents.pop(agent.name, None)
        self.by_account.pop(agent.account_id, None)
        task = self.loops.pop(agent.name, None)
        if task is not None:
            task.cancel()
        await self._cancel_all(agent)
        await self.redis.hdel(keys.agent_status(), agent.name)
        logger.info("agent %s: removed", agent.name)

    # --- status --------------------------------------------------------------------------------

    async def _publish_status(self) -> None:
        while True:
            try:
                await self._write_status()
            except redis.RedisError as exc:
                logger.warning("status not published: %r", exc)
            await asyncio.sleep(STATUS_EVERY_S)

    async def _write_status(self, *, final: bool = False) -> None:
        now_ms = time.time_ns() // 1_000_000
        statuses = {}
        for agent in self.agents.values():
            status = agent.status(
                paused=self.paused,
                mark_ticks=self.markets[agent.symbol].mark_ticks(),
                now_ms=now_ms,
            )
            if final:
                status["state"] = "offline"
            statuses[agent.name] = json.dumps(status)
        pipe = self.redis.pipeline(transaction=False)
        if statuses:
            pipe.hset(keys.agent_status(), mapping=statuses)
        if self.markets:
            pipe.hset(
                keys.fundamentals(),
                mapping={
                    s: json.dumps(m.saved_state(self.shock_id)) for s, m in self.markets.items()
                },
            )
        if final:
            pipe.hdel(keys.runners(), self.id)
        else:
            elapsed = max(1e-9, time.monotonic() - self.stats.started)
            beat = {
                "id": self.id,
                "pid": os.getpid(),
                "ts_ms": now_ms,
                "agents": len(self.agents),
                "symbols": sorted(self.markets),
                "orders": self.stats.orders,
                "commands_per_s": round(self.stats.commands / elapsed, 1),
            }
            pipe.hset(keys.runners(), self.id, json.dumps(beat))
        await pipe.execute()

    # --- stop ----------------------------------------------------------------------------------

    async def _shutdown(self, background: list[asyncio.Task]) -> None:
        logger.info("runner stopping: cancelling the agents' open orders")
        loops = list(self.loops.values())
        for task in list(self.sleeping):
            task.cancel()  # asleep: no action to finish
        if loops:
            await asyncio.wait(loops, timeout=15)  # each finishes the action it is in
        for agent in list(self.agents.values()):
            await self._cancel_all(agent)
        deadline = time.monotonic() + STOP_CONFIRM_S
        while time.monotonic() < deadline and any(
            a.state.open_orders for a in self.agents.values()
        ):
            await asyncio.sleep(0.05)
        left = sum(len(a.state.open_orders) for a in self.agents.values())
        if left:
            logger.warning("runner stop: %d orders not confirmed cancelled", left)
        for task in background:
            task.cancel()
        # Bounded: redis-py can leave a task cancelled in the middle of a read waiting on its
        # socket (seen with the hiredis parser); the process must stop all the same.
        _, stuck = await asyncio.wait(background, timeout=5)
        if stuck:
            logger.warning("runner stop: %d background tasks did not end", len(stuck))
        try:
            await self._write_status(final=True)
        except redis.RedisError as exc:
            logger.warning("final status not published: %r", exc)
        elapsed = time.monotonic() - self.stats.started
        logger.info(
            "runner stop id=%s wakes=%d orders=%d cancels=%d replaces=%d refused=%d errors=%d "
            "commands_per_s=%.1f",
            self.id,
            self.stats.wakes,
            self.stats.orders,
            self.stats.cancels,
            self.stats.replaces,
            self.stats.refused,
            self.stats.errors,
            self.stats.commands / max(elapsed, 1e-9),
        )


async def _unsubscribed(pubsub) -> None:
    """Drops a sim-channel subscription whose connection failed (the next pass makes a new one)."""
    if pubsub is not None:
        try:
            await pubsub.aclose()
        except redis.RedisError:
            pass


def _id_key(stream_id: str) -> tuple[int, int]:
    ms, _, seq = stream_id.partition("-")
    return int(ms), int(seq or 0)
