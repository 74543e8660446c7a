"""``simulate --fork``: a research run from the live market as it is — the real engine's book
(snapshot plus the journal after it), the admin's agents with their accounts, the runner's
fundamental value — and its counterfactual branches, re-made byte for byte by ``verify``."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command
from flashbook_engine import OrderBook

from agents.keys import fundamentals
from agents.research.config import ConfigError
from agents.research.fork import Branch, ForkStart, capture, parse_branch, read_capture
from exchange.protocol import keys
from tests.recorder.support import (
    make_account,
    make_instrument,
    replay_journal,
    run_engine,
    write_journal,
)
from tests.research.lobster_replay import read_book, read_messages, replay

pytestmark = pytest.mark.django_db(transaction=True)


# Forks are captured at noon UTC: a fork's session ends at midnight at the latest (the simulated
# clock is the time of day), so one captured near midnight would be cut short.
NOON_NS = 1_796_385_600 * 10**9  # 2026-12-04 12:00 UTC


def _new(order_id: int, account: int, side: str, price: int, qty: int) -> dict:
    return {"t": "new", "id": order_id, "acct": account, "side": side, "px": price, "qty": qty}


@pytest.fixture
def live_market(file_db, r):
    """FORK with four agents and a person, a book the engine has processed and snapshotted,
    entries after the snapshot it has not, and the runner's fundamental value."""
    from agents.services import agent_config_create

    make_instrument("FORK")
    agents = {
        "mm": agent_config_create(
            name="mm",
            strategy="market_maker",
            symbol="FORK",
            params={"levels": 2},
            wake_rate_hz=2.0,
            max_position=500,
            initial_cash=Decimal("1000000"),
        ),
        "val": agent_config_create(
            name="val",
            strategy="value",
            symbol="FORK",
            wake_rate_hz=0.5,
            initial_cash=Decimal("1000000"),
        ),
    }
    for i in range(3):
        agents[f"noise{i}"] = agent_config_create(
            name=f"noise{i}", strategy="noise", symbol="FORK", wake_rate_hz=1.0,
            max_position=100, initial_cash=Decimal("1000000"),
        )  # fmt: skip
    account = {name: config.account_id for name, config in agents.items()}
    human = make_account("human").pk
    write_journal(
        r,
        "FORK",
        [
            _new(1, account["mm"], "buy", 9990, 10),
            _new(2, account["mm"], "sell", 10010, 10),
            _new(3, human, "sell", 10020, 5),
            _new(4, account["noise0"], "buy", 10010, 4),  # a trade: noise0 long 4, mm short 4
            _new(5, account["mm"], "buy", 9985, 6),
        ],
    )
    run_engine(file_db, ["FORK"])  # processes them and leaves a snapshot
    snap_jid = r.hget(keys.key("snap", "FORK"), "jid")
    assert snap_jid is not None
    # Entries the engine has not seen: the fork must still hold them.
    write_journal(
        r, "FORK", [_new(6, human, "buy", 9980, 7), {"t": "cancel", "id": 5, "acct": account["mm"]}]
    )
    r.hset(fundamentals(), "FORK", json.dumps({"value": 10100.0, "mean": 10050.0}))
    return account, human, snap_jid.decode()


def test_capture_holds_the_engine_state_at_the_journal_end(live_market, r):
    account, _, snap_jid = live_market
    captured = capture("FORK", minutes=5, now_ns=NOON_NS)
    book = OrderBook.restore(captured.snapshot)
    # The snapshot plus the journal after it: the same state as the whole journal replayed.
    assert book.state_hash() == replay_journal(r, "FORK").state_hash()
    assert captured.journal_id > snap_jid
    assert {o.order_id for o in book.resting_orders()} == {1, 2, 3, 6}
    assert book.exposure(account["noise0"]).position == 4
    assert captured.accounts == {name: pk for name, pk in account.items()}
    assert captured.fundamental == {"value": 10100.0, "mean": 10050.0}
    config = captured.base_config()
    assert config.activity.sd == 0 and config.fundamental["mean"] == 10050.0
    assert (config.end_ns - config.start_ns) == 5 * 60 * 10**9
    assert {g.name for g in config.agents} == set(account)
    start = ForkStart.of(captured)
    assert start.fundamental == (10100.0, 10050.0)


def test_fork_branches_run_side_by_side_and_verify(live_market, r, tmp_path):
    account, human, _ = live_market
    out = tmp_path / "fork"
    capture("FORK", minutes=3, now_ns=NOON_NS).write(tmp_path)
    call_command(
        "simulate", "--fork-file", str(tmp_path / "fork.json"), "--seed", "3", "--out", str(out),
        "--branch", "without=mm", "--branch", "shock=-5@1", "--branch", "tick=0.05;fees=-1/3",
        "--no-progress",
    )  # fmt: skip
    comparison = json.loads((out / "comparison.json").read_text())
    names = [row["name"] for row in comparison["branches"]]
    assert names == ["as-is", "without-mm", "shock-5at1m", "tick-0.05_fees--1-3"]
    assert (out / "comparison.html").is_file() and (out / "plots" / "branches.png").is_file()
    captured = read_capture(out / "fork.json")

    # The market as it is: the first order book row holds the captured book, before any message;
    # the LOBSTER files replay from it.
    summary = json.loads((out / "as-is" / "summary.json").read_text())
    assert summary["fork"]["symbol"] == "FORK" and summary["fork"]["branch_name"] == "as-is"
    message_file = out / "as-is" / summary["lobster"]["message_file"]
    book_file = out / "as-is" / summary["lobster"]["orderbook_file"]
    messages, rows = read_messages(message_file), read_book(book_file, 10)
    start_orders = {
        1: [1, 9990 * 100, 10],
        2: [-1, 10010 * 100, 6],
        3: [-1, 10020 * 100, 5],
        6: [1, 9980 * 100, 7],
    }
    replay(messages, rows, 10, initial=start_orders)
    assert summary["counts"]["trades"] > 0
    agents_csv = (out / "as-is" / "agents.csv").read_text().splitlines()
    by_name = {line.split(",")[1]: line.split(",") for line in agents_csv[1:]}
    assert by_name[f"account-{human}"][3] == "outside"  # the person's orders stay, passive
    assert int(by_name[f"account-{human}"][4]) == 0  # never woken

    # Without the market maker: its orders are gone from the start.
    without = json.loads((out / "without-mm" / "summary.json").read_text())
    lobster = without["lobster"]
    replay(
        read_messages(out / "without-mm" / lobster["message_file"]),
        read_book(out / "without-mm" / lobster["orderbook_file"], 10),
        10,
        initial={3: start_orders[3], 6: start_orders[6]},
    )
    assert "mm" not in {a["name"] for a in without["config"]["agents"]}

    # The shock moved the fundamental (and the reference price) at its minute: the value agent
    # trades a lower market than in the market as it is.
    shocked = comparison["branches"][2]["figures"]
    as_is = comparison["branches"][0]["figures"]
    assert shocked["close_mid"]["mean"] < as_is["close_mid"]["mean"]

    # The coarser tick: every resting price is on the new grid, bids rounded down, asks up.
    coarse = ForkStart.of(captured, parse_branch("tick=0.05;fees=-1/3"))
    book = coarse.open_book()
    assert {(o.side, o.price) for o in book.resting_orders()} == {
        ("buy", 1998), ("sell", 2002), ("sell", 2004), ("buy", 1996)
    }  # fmt: skip
    assert book.exposure(account["noise0"]).position == 4  # positions carried over
    assert coarse.config.maker_fee_bps == -1 and coarse.config.taker_fee_bps == 3

    call_command("simulate", "verify", str(out), "--no-progress")
    (out / "as-is" / "trades.csv").write_text("tampered\n")
    with pytest.raises(CommandError, match="verify failed"):
        call_command("simulate", "verify", str(out), "--no-progress")


def test_fork_reruns_from_its_file_and_seeds_agree(live_market, tmp_path):
    captured = capture("FORK", minutes=2, now_ns=NOON_NS)
    captured.write(tmp_path)
    one, two = tmp_path / "one", tmp_path / "two"
    for out in (one, two):
        call_command(
            "simulate", "--fork-file", str(tmp_path / "fork.json"), "--seed", "5",
            "--runs", "2", "--out", str(out), "--no-progress", "--no-report",
        )  # fmt: skip
    for name in ("as-is/seed-5/trades.csv", "as-is/seed-6/agents.csv", "comparison.json"):
        assert (one / name).read_bytes() == (two / name).read_bytes()
    assert (one / "as-is" / "seed-5" / "trades.csv").read_bytes() != (
        one / "as-is" / "seed-6" / "trades.csv"
    ).read_bytes()


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("colour=red", "unknown change"),
        ("shock=abc", "shock=PCT@MINUTES"),
        ("shock=-95@1", "above -90"),
        ("tick=0", "positive price step"),
        ("fees=1", "MAKER/TAKER"),
        ("band=-1", "band=PCT"),
        ("without", "NAME=VALUE"),
    ],
)
def test_bad_branches_say_what_is_wrong(text, fragment):
    with pytest.raises(ConfigError, match=fragment):
        parse_branch(text)


def test_fork_errors(live_market, tmp_path):
    captured = capture("FORK", minutes=2, now_ns=NOON_NS)
    with pytest.raises(ConfigError, match="no agent named 'nobody'"):
        ForkStart.of(captured, Branch(without=("nobody",)))
    with pytest.raises(ConfigError, match="after the fork's session"):
        ForkStart.of(captured, Branch(shocks=((5.0, -1.0),)))
    with pytest.raises(CommandError, match="no enabled agents trade 'NOPE'"):
        call_command("simulate", "--fork", "NOPE", "--out", str(tmp_path / "x"))
    with pytest.raises(CommandError, match="--branch needs --fork"):
        call_command("simulate", "--preset", "small", "--branch", "band=5", "--out", str(tmp_path))
    with pytest.raises(CommandError, match="no fork capture"):
        call_command("simulate", "--fork-file", str(tmp_path / "none.json"), "--out", str(tmp_path))
