"""The agents runner with the real parts: Redis (a key prefix of the test's own), the engine
worker, the recorder and `manage.py run_agents` as subprocesses, on an SQLite file, with the
demo population of `seed_demo`.

One scenario, in phases (starting the processes is the slow part): trading on both symbols,
a bankrupt agent, an agent disabled in the admin, pause and resume, a shock, a runner restart,
a reset, and a clean stop — then the database against the engine and every agent's limit over
the whole history.
"""

import io
import json
import signal
import time
from collections import defaultdict
from decimal import Decimal as D

import flashbook_engine
import pytest
from django.core.management import call_command

from agents import selectors, services
from agents.models import AgentConfig
from exchange.models import OPEN_STATUSES, Account, Order, Position, RecorderCursor, Trade
from exchange.protocol import keys
from tests.recorder.support import assert_engine_agrees, start_manage

pytestmark = pytest.mark.django_db(transaction=True)

SYMBOLS = ["ACME", "GLOBEX"]


def wait_until(condition, timeout: float, message: str, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(message)
        time.sleep(interval)


def book(r, symbol: str) -> dict:
    raw = r.get(keys.key("book", symbol))
    return json.loads(raw) if raw else {"bids": [], "asks": []}


def mid(r, symbol: str) -> float | None:
    b = book(r, symbol)
    if b["bids"] and b["asks"]:
        return (b["bids"][0][0] + b["asks"][0][0]) / 2
    return None


def news_since(r, symbol: str, ms: int) -> int:
    """NEW commands appended to the symbol's journal at or after `ms` (stream-id time)."""
    entries = r.xrange(keys.key("cmd", symbol), min=f"{ms}-0")
    return sum(1 for _, fields in entries if fields.get(b"t") == b"new")


def events(r, symbol: str) -> list:
    out = []
    for _, fields in r.xrange(keys.key("evt", symbol)):
        out.extend(flashbook_engine.decode_events(fields[b"e"]))
    return out


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class Stack:
    def __init__(self, database, logs):
        self.database = database
        self.logs = logs
        self.processes = {}
        self.runs = 0

    def start(self, name, *args):
        self.runs += 1
        log = self.logs / f"{name}-{self.runs}.log"
        self.processes[name] = (start_manage(self.database, log, *args), log)

    def start_runner(self):
        self.start("agents", "run_agents", "--seed", "7")

    # The runner's orderly stop may take up to ~25 s by design (15 s for the actions in flight,
    # the cancels, 5 s for their confirmations); a loaded CI machine needs the margin.
    def stop(self, name, timeout=60) -> int:
        process, _ = self.processes.pop(name)
        process.send_signal(signal.SIGTERM)
        return process.wait(timeout=timeout)

    def log(self, name) -> str:
        return self.processes[name][1].read_text() if name in self.processes else ""

    def alive(self):
        for name, (process, log) in self.processes.items():
            assert process.poll() is None, f"{name} exited:\n{log.read_text()[-3000:]}"

    def close(self):
        if "agents" in self.processes:  # first, so the engine still takes its cancels
            try:
                self.stop("agents")
            except Exception:
                pass
        for process, _ in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process, _ in self.processes.values():
            try:
                process.wait(timeout=20)
            except Exception:
                process.kill()


@pytest.fixture
def stack(file_db, r, tmp_path):
    call_command("seed_demo", stdout=io.StringIO())
    # An agent bound to lose: market orders only, stopped by any loss at all.
    services.agent_config_create(
        name="acme-loser",
        strategy="noise",
        symbol="ACME",
        params={"cross_prob": 1.0, "market_prob": 1.0, "size_min": 3, "size_max": 5},
        wake_rate_hz=2.0,
        max_position=30,
        initial_cash=D(100000),
        min_bankroll=D(100000),
    )
    running = Stack(file_db, tmp_path)
    running.start("engine", "run_engine", "--symbols", ",".join(SYMBOLS))
    running.start("recorder", "run_recorder")
    running.start_runner()
    yield running
    running.close()


def drained(r, symbols) -> bool:
    """The engine has applied every journal entry and the recorder recorded every event."""
    for symbol in symbols:
        last_cmd = r.xrevrange(keys.key("cmd", symbol), count=1)
        status = r.hgetall(keys.key("status", symbol))
        if last_cmd and status.get(b"jid") != last_cmd[0][0]:
            return False
        last_evt = r.xrevrange(keys.key("evt", symbol), count=1)
        recorded = (
            RecorderCursor.objects.filter(instrument__symbol=symbol)
            .values_list("last_seq", flat=True)
            .first()
        )
        if last_evt and int(last_evt[0][1][b"last"]) != (recorded or 0):
            return False
    return True


def test_the_live_market(stack, r):
    # --- 10 s of trading: trades on both symbols, from the agents' own accounts -----------
    wait_until(lambda: selectors.sim_status()["runner_alive"], 30, "the runner never started")
    started = time.monotonic()
    time.sleep(10)
    stack.alive()
    for symbol in SYMBOLS:
        trades = [e for e in events(r, symbol) if e.kind == "trade"]
        assert len(trades) >= 10, (symbol, len(trades), stack.log("agents")[-2000:])
        assert Trade.objects.filter(instrument__symbol=symbol).exists()
        quotes = book(r, symbol)
        assert quotes["bids"] and quotes["asks"], quotes
        spread = quotes["asks"][0][0] - quotes["bids"][0][0]
        assert 0 < spread <= 20, quotes  # a sane spread: ticks, not percent
    rows = {row["name"]: row for row in selectors.leaderboard()}
    assert rows["acme-mm-01"]["status"] == "running"

    # --- the loser went below its minimum bankroll: it stopped and cancelled --------------
    wait_until(
        lambda: (
            selectors.leaderboard("ACME") and rows_by_name()["acme-loser"]["status"] == "stopped"
        ),
        20,
        "the losing agent never stopped",
    )
    loser = AgentConfig.objects.get(name="acme-loser")
    sent = Order.objects.filter(account=loser.account_id).count()
    assert sent > 0

    # --- an agent disabled in the admin stops and cancels its quotes, no restart -----------
    maker = AgentConfig.objects.get(name="globex-mm-02")
    wait_until(
        lambda: Order.objects.filter(account=maker.account_id, status__in=OPEN_STATUSES).exists(),
        10,
        "the market maker never quoted",
    )
    services.agent_configs_set_enabled(configs=[maker], enabled=False)
    wait_until(
        lambda: (
            not Order.objects.filter(account=maker.account_id, status__in=OPEN_STATUSES).exists()
            and rows_by_name()["globex-mm-02"]["status"] == "disabled"
        ),
        10,
        "the disabled market maker kept its quotes",
    )

    # --- pause stops new orders within a second; resume restarts them ----------------------
    services.sim_pause()
    paused_at = now_ms()
    time.sleep(2.5)
    for symbol in SYMBOLS:
        assert news_since(r, symbol, paused_at + 1000) == 0, symbol
    assert rows_by_name()["acme-mm-01"]["status"] == "paused"
    assert Order.objects.filter(account=loser.account_id).count() == sent  # still stopped
    services.sim_resume()
    resumed_at = now_ms()
    wait_until(
        lambda: all(news_since(r, s, resumed_at) > 0 for s in SYMBOLS),
        5,
        "trading did not restart after resume",
    )

    # --- a -10 % shock moves the mid down within seconds ----------------------------------
    before = wait_until(lambda: mid(r, "ACME"), 5, "no two-sided ACME book")
    services.sim_shock(symbol="ACME", pct=D(-10))
    wait_until(
        lambda: (mid(r, "ACME") or before) < before - 10,
        15,
        f"the ACME mid did not follow the shock (from {before})",
        interval=0.25,
    )

    # --- the runner restarts and carries on from the database and the streams --------------
    assert stack.stop("agents") == 0
    stack.start_runner()
    restarted_at = now_ms()
    wait_until(
        lambda: all(news_since(r, s, restarted_at) > 0 for s in SYMBOLS),
        20,
        "the restarted runner does not trade",
    )

    # --- reset (paused): the books empty, every account restored, the agents' state too ----
    services.sim_pause()
    services.sim_reset()
    wait_until(lambda: selectors.reset_pending() is None, 20, "the reset never completed")
    assert selectors.sim_status()["state"] == "paused"
    wait_until(
        lambda: all(not book(r, s)["bids"] and not book(r, s)["asks"] for s in SYMBOLS),
        5,
        "the books are not empty after the reset",
    )
    for account in Account.objects.all():
        assert account.cash == account.initial_cash, account.name
    assert not Position.objects.exclude(quantity=0).exists()
    assert not Order.objects.filter(
        account__agent_config__isnull=False, status__in=["NEW", "PARTIALLY_FILLED"]
    ).exists()
    statuses = selectors.agent_statuses()
    wait_until(
        lambda: all(
            s["position_lots"] == 0 and D(s["cash"]) == D(100000)
            for s in selectors.agent_statuses().values()
        ),
        3,
        f"the runner's agents were not reset: {statuses}",
    )
    services.sim_resume()
    resumed_at = now_ms()
    wait_until(
        lambda: all(news_since(r, s, resumed_at) > 0 for s in SYMBOLS),
        5,
        "trading did not restart after the reset",
    )
    assert rows_by_name()["acme-loser"]["status"] != "stopped"  # a reset gives a new bankroll
    time.sleep(2)

    # --- a clean stop: open orders cancelled; database, engine and runner agree -------------
    assert stack.stop("agents") == 0
    wait_until(lambda: drained(r, SYMBOLS), 20, "the engine or the recorder did not catch up")
    assert (
        not Order.objects.filter(account__agent_config__isnull=False, status__in=OPEN_STATUSES)
        .exclude(order_id__isnull=True)
        .exists()
    )
    assert_engine_agrees(r, SYMBOLS)
    final = selectors.agent_statuses()
    for config in AgentConfig.objects.select_related("account", "instrument"):
        position = Position.objects.filter(account=config.account, instrument=config.instrument)
        quantity = position.first().quantity if position.exists() else D(0)
        assert D(final[config.name]["position"]) == quantity, config.name
        assert D(final[config.name]["cash"]) == config.account.cash, config.name

    # --- no agent ever exceeded its maximum position ---------------------------------------
    limits = {
        c.account_id: c.account.default_max_position
        for c in AgentConfig.objects.select_related("account")
    }
    for symbol in SYMBOLS:
        held: dict[int, int] = defaultdict(int)
        worst: dict[int, int] = defaultdict(int)
        for event in events(r, symbol):
            if event.kind == "status" and event.status == "RESET":
                held.clear()
            elif event.kind == "trade" and event.maker_account != event.taker_account:
                sign = 1 if event.aggressor == "buy" else -1
                held[event.taker_account] += sign * event.qty
                held[event.maker_account] -= sign * event.qty
                for account in (event.taker_account, event.maker_account):
                    worst[account] = max(worst[account], abs(held[account]))
        for account, peak in worst.items():
            assert peak <= limits[account], (symbol, account, peak, limits[account])
        assert any(peak > 0 for peak in worst.values())
    assert time.monotonic() - started < 120


def rows_by_name() -> dict:
    return {row["name"]: row for row in selectors.leaderboard()}
