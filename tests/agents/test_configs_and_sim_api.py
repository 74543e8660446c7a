"""Agent configurations (service, admin) and the simulation API against a real Redis, without
an engine: what the services write (journal commands, the state hash, the pub/sub notice) and
the API's answers, permissions and errors."""

import io
import json
import threading
import time
from decimal import Decimal as D

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from agents import keys, selectors, services
from agents.models import AgentConfig
from exchange.errors import Conflict, InvalidInput, NotFound
from exchange.models import Account, Instrument, Position
from exchange.protocol import keys as exchange_keys
from exchange.services import api_token_create
from tests.recorder.support import make_account, make_instrument

pytestmark = pytest.mark.django_db


@pytest.fixture
def market(redis_prefix):
    return {
        "ACME": make_instrument("ACME", tick="0.01", lot="1"),
        "GLOBEX": make_instrument("GLOBEX", tick="0.05", lot="10"),
    }


def client_for(username: str, *, staff: bool = False) -> APIClient:
    user = get_user_model().objects.create_user(username=username, is_staff=staff)
    _, secret = api_token_create(user=user, name="tests")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


def assert_error(response, status: int, code: str | None = None, field: str | None = "-"):
    assert response.status_code == status, (response.status_code, response.content[:400])
    error = response.json()["error"]
    assert set(error) == {"status", "code", "field", "message"}
    if code is not None:
        assert error["code"] == code, error
    if field != "-":
        assert error["field"] == field, error
    return error


# --- configurations -------------------------------------------------------------------------


def test_a_config_gets_an_account_with_its_bankroll_and_limits(market):
    config = services.agent_config_create(
        name="mm-1",
        strategy="market_maker",
        symbol="ACME",
        params={"levels": 2},
        max_position=80,
        max_order_qty=20,
        initial_cash=D("25000"),
        min_bankroll=D("5000"),
    )
    account = config.account
    assert account.name == "agent:mm-1" and account.user is None
    assert (account.cash, account.initial_cash, account.min_bankroll) == (
        D(25000),
        D(25000),
        D(5000),
    )
    assert (account.default_max_position, account.max_order_qty) == (80, 20)
    # Defaults filled in, so the admin shows every parameter.
    assert config.params["levels"] == 2 and config.params["size"] == 5
    assert "half_spread" in config.params

    assert selectors.agent_config_limits(config) == {
        "initial_cash": D(25000),
        "min_bankroll": D(5000),
        "max_position": 80,
        "max_order_qty": 20,
    }

    # An edit writes the limits given to the account (the one place they live), leaves the
    # others as they are, and the cash stays what trading made it.
    Account.objects.filter(pk=account.pk).update(cash=D("24000"))
    config.refresh_from_db()
    config.wake_rate_hz = 2.0
    before = config.updated_at
    services.agent_config_save(config=config, max_position=60, initial_cash=D("30000"))
    account.refresh_from_db()
    assert (account.default_max_position, account.initial_cash, account.cash) == (
        60,
        D(30000),
        D(24000),
    )
    assert (account.min_bankroll, account.max_order_qty) == (D(5000), 20)
    assert AgentConfig.objects.get(pk=config.pk).updated_at > before  # the runner sees it


def test_a_new_agent_takes_the_agent_defaults_and_limits_are_checked(market):
    config = services.agent_config_create(name="n", strategy="noise", symbol="ACME")
    assert selectors.agent_config_limits(config) == {
        "initial_cash": D(100000),
        "min_bankroll": D(50000),
        "max_position": 100,
        "max_order_qty": 1000,
    }
    assert config.account.cash == D(100000)
    for limits, field in [
        ({"max_position": 0}, "max_position"),
        ({"max_order_qty": -1}, "max_order_qty"),
        ({"initial_cash": D(-1)}, "initial_cash"),
        ({"min_bankroll": "lots"}, "min_bankroll"),
        ({"max_position": 1.5}, "max_position"),
    ]:
        with pytest.raises(InvalidInput) as caught:
            services.agent_config_create(name="bad", strategy="noise", symbol="ACME", **limits)
        assert caught.value.field == field, limits
        with pytest.raises(InvalidInput) as caught:
            services.agent_config_save(config=config, **limits)
        assert caught.value.field == field, limits
    assert not AgentConfig.objects.filter(name="bad").exists()
    assert not Account.objects.filter(name="agent:bad").exists()
    config.account.refresh_from_db()
    assert selectors.agent_config_limits(config)["max_position"] == 100
    with pytest.raises(TypeError):
        services.agent_config_save(config=config, max_positon=5)

    # A rename renames the account; None leaves a limit as it is.
    config.name = "renamed"
    services.agent_config_save(config=config, max_position=None, max_order_qty=7)
    config.account.refresh_from_db()
    assert config.account.name == "agent:renamed"
    assert (config.account.default_max_position, config.account.max_order_qty) == (100, 7)


@pytest.mark.parametrize(
    "strategy, params, field, fragment",
    [
        ("noise", {"size_max": 0}, "params", "size_max: must be at least 1"),
        ("noise", {"size_min": 10, "size_max": 5}, "params", "size_max: must be at least size_min"),
        ("momentum", {"fast_s": 30, "slow_s": 10}, "params", "slow_s: must be greater"),
        ("value", {"bogus": 1}, "params", "bogus: unknown parameter"),
        ("market_maker", {"post_only": "yes"}, "params", "post_only: must be true or false"),
        ("market_maker", [1, 2], "params", "parameters must be a mapping"),
        ("martingale", {}, "strategy", "not a valid choice"),
    ],
)
def test_bad_parameters_are_refused_naming_the_field(market, strategy, params, field, fragment):
    with pytest.raises(InvalidInput) as caught:
        services.agent_config_create(name="x", strategy=strategy, symbol="ACME", params=params)
    assert caught.value.field == field
    assert fragment in caught.value.message
    assert not AgentConfig.objects.exists() and not Account.objects.exists()


def test_unknown_symbol_and_taken_names(market):
    with pytest.raises(NotFound):
        services.agent_config_create(name="x", strategy="noise", symbol="NOPE")
    services.agent_config_create(name="x", strategy="noise", symbol="ACME")
    with pytest.raises(InvalidInput) as caught:
        services.agent_config_create(name="x", strategy="noise", symbol="ACME")
    assert caught.value.field == "name"
    # The account of a deleted agent is taken over by a new agent of that name.
    AgentConfig.objects.filter(name="x").delete()
    again = services.agent_config_create(name="x", strategy="value", symbol="ACME")
    assert again.account.name == "agent:x" and Account.objects.count() == 1
    # A linked account is never shared.
    AgentConfig.objects.filter(pk=again.pk).update(name="y")
    with pytest.raises(Conflict):
        services.agent_config_create(name="x", strategy="noise", symbol="ACME")


def test_duplicate_enable_disable(market):
    original = services.agent_config_create(
        name="noise-1", strategy="noise", symbol="ACME", params={"size_max": 30}
    )
    copy = services.agent_config_duplicate(config=original)
    third = services.agent_config_duplicate(config=original)
    assert (copy.name, third.name) == ("noise-1-2", "noise-1-3")
    assert not copy.enabled and copy.params == original.params
    assert copy.account_id not in (original.account_id, third.account_id)
    before = AgentConfig.objects.get(pk=original.pk).updated_at
    time.sleep(0.01)
    assert services.agent_configs_set_enabled(configs=[copy, third], enabled=True) == 2
    assert services.agent_configs_set_enabled(configs=[original], enabled=False) == 1
    assert AgentConfig.objects.get(pk=original.pk).updated_at > before  # the runner sees it
    enabled = selectors.agent_configs_enabled()
    assert sorted(row["name"] for row in enabled) == ["noise-1-2", "noise-1-3"]
    row = enabled[0]
    assert set(row) == {
        "name",
        "account_id",
        "strategy",
        "symbol",
        "params",
        "wake_rate_hz",
        "max_position",
        "min_bankroll",
        "initial_cash",
        "tick_size",
        "lot_size",
        "reference_price",
        "price_band_pct",
        "volatility_move_pct",
        "volatility_window_seconds",
        "volatility_pause_seconds",
        "maker_fee_bps",
        "taker_fee_bps",
    }
    assert row["params"]["size_max"] == 30 and row["tick_size"] == D("0.01")
    assert row["price_band_pct"] == D("0")  # the tests' instruments have no band
    assert selectors.agent_configs_enabled(["GLOBEX"]) == []


# --- admin ------------------------------------------------------------------------------------


@pytest.fixture
def admin_client(client):
    user = get_user_model().objects.create_superuser("root", "root@example.com", "pw")
    client.force_login(user)
    return client


def _form(instrument, **overrides):
    data = {
        "name": "val-1",
        "strategy": "value",
        "instrument": instrument.pk,
        "enabled": "on",
        "params": '{"trade_size": 10}',
        "wake_rate_hz": "0.5",
        "max_position": "100",
        "max_order_qty": "50",
        "initial_cash": "100000",
        "min_bankroll": "20000",
    }
    data.update(overrides)
    return data


def test_admin_form_errors_sit_on_the_field_and_a_good_form_creates_the_account(
    market, admin_client
):
    url = "/admin/agents/agentconfig/add/"
    page = admin_client.get(url)
    assert page.status_code == 200
    assert b"aggressive_ticks" in page.content  # the parameter reference of every strategy

    bad = admin_client.post(url, _form(market["ACME"], params='{"trade_size": -3}'))
    assert bad.status_code == 200
    errors = bad.context["adminform"].form.errors
    assert list(errors) == ["params"], errors
    assert "trade_size: must be at least 1" in errors["params"][0]
    not_json = admin_client.post(url, _form(market["ACME"], params="{trade_size: 3"))
    assert "params" in not_json.context["adminform"].form.errors
    assert not AgentConfig.objects.exists()

    good = admin_client.post(url, _form(market["ACME"]))
    assert good.status_code == 302, good.content[:2000]
    config = AgentConfig.objects.get(name="val-1")
    assert config.params["trade_size"] == 10 and config.params["noise_ticks"] == 5.0
    assert config.account.cash == D(100000) and config.account.max_order_qty == 50

    change = admin_client.get(f"/admin/agents/agentconfig/{config.pk}/change/")
    assert b"agent:val-1" in change.content and b"noise_ticks" in change.content
    # The limits are shown from the account, and an edit writes them back to it.
    Account.objects.filter(pk=config.account_id).update(min_bankroll=D("12345"))
    form = (
        admin_client.get(f"/admin/agents/agentconfig/{config.pk}/change/").context["adminform"].form
    )
    assert (
        form.initial["min_bankroll"] == "12345"
    )  # written plainly and form.initial["max_order_qty"] == 50
    edited = admin_client.post(
        f"/admin/agents/agentconfig/{config.pk}/change/",
        _form(market["ACME"], max_position="70", min_bankroll="15000"),
    )
    assert edited.status_code == 302, edited.content[:2000]
    account = Account.objects.get(pk=config.account_id)
    assert (account.default_max_position, account.min_bankroll, account.max_order_qty) == (
        70,
        D(15000),
        50,
    )
    refused = admin_client.post(
        f"/admin/agents/agentconfig/{config.pk}/change/", _form(market["ACME"], max_position="0")
    )
    assert list(refused.context["adminform"].form.errors) == ["max_position"]
    # A new agent's form offers the agent defaults.
    initial = admin_client.get(url).context["adminform"].form
    assert initial["max_position"].initial == 100 and initial["min_bankroll"].initial == 50000


def test_admin_list_shows_live_status_and_pnl_and_runs_the_actions(market, admin_client, r):
    a = services.agent_config_create(name="a", strategy="noise", symbol="ACME")
    b = services.agent_config_create(name="b", strategy="noise", symbol="ACME")
    Position.objects.create(
        account=a.account, instrument=market["ACME"], quantity=D(10), cost_basis=D(990)
    )
    Account.objects.filter(pk=a.account_id).update(cash=D(100000) - 990)
    _publish_status(r, "a", "running", open_orders=3)

    page = admin_client.get("/admin/agents/agentconfig/")
    assert page.status_code == 200
    text = page.content.decode().lower()
    for header in ("status", "equity", "realized p&amp;l", "unrealized p&amp;l", "open orders"):
        assert header in text, header
    assert "running" in text and "offline" in text
    assert "100010.00" in text  # a: 99010 cash + 10 at the reference price 100, to the cent

    # Numbers right-aligned in columns; the limits in the form written plainly.
    assert 'class="field-live_equity_shown"' in page.content.decode()
    form = admin_client.get(f"/admin/agents/agentconfig/{a.pk}/change/").content.decode()
    assert 'value="100000"' in form and "100000.00000000" not in form

    admin_client.post(
        "/admin/agents/agentconfig/",
        {"action": "disable_agents", "_selected_action": [a.pk, b.pk]},
    )
    assert not AgentConfig.objects.filter(enabled=True).exists()
    admin_client.post(
        "/admin/agents/agentconfig/", {"action": "enable_agents", "_selected_action": [b.pk]}
    )
    assert list(AgentConfig.objects.filter(enabled=True).values_list("name", flat=True)) == ["b"]
    admin_client.post(
        "/admin/agents/agentconfig/", {"action": "duplicate_agents", "_selected_action": [b.pk]}
    )
    assert AgentConfig.objects.filter(name="b-2", enabled=False).exists()


# --- leaderboard ------------------------------------------------------------------------------


def _publish_status(r, name: str, state: str, *, open_orders: int = 0, age_ms: int = 0):
    status = {"state": state, "open_orders": open_orders, "ts_ms": time.time_ns() // 10**6 - age_ms}
    r.hset(keys.agent_status(), name, json.dumps(status))


def test_leaderboard_rows_statuses_and_order(market, r):
    rich = services.agent_config_create(name="rich", strategy="value", symbol="ACME")
    poor = services.agent_config_create(name="poor", strategy="noise", symbol="ACME")
    off = services.agent_config_create(name="off", strategy="momentum", symbol="GLOBEX")
    gone = services.agent_config_create(name="gone", strategy="noise", symbol="GLOBEX")
    services.agent_configs_set_enabled(configs=[off], enabled=False)
    Position.objects.create(
        account=rich.account,
        instrument=market["ACME"],
        quantity=D(-20),
        cost_basis=D("-2020"),
        realized_pnl=D("12.5"),
    )
    Account.objects.filter(pk=rich.account_id).update(cash=D(100000) + 2020)
    Account.objects.filter(pk=poor.account_id).update(cash=D(99000))
    _publish_status(r, "rich", "running", open_orders=2)
    _publish_status(r, "poor", "stopped")
    _publish_status(r, "off", "running")
    _publish_status(r, "gone", "running", age_ms=10_000)  # its runner died

    rows = selectors.leaderboard()
    assert [row["name"] for row in rows] == ["rich", "gone", "off", "poor"]
    assert rows[0] == {
        "name": "rich",
        "strategy": "value",
        "symbol": "ACME",
        "equity": "100020.00",  # 102020 cash - 20 at the reference price 100
        "realized_pnl": "12.50",
        "unrealized_pnl": "20.00",  # 100 * -20 - (-2020)
        "fees_paid": "0.00",
        "position": "-20",
        "open_orders": 2,
        "status": "running",
    }
    statuses = {row["name"]: row["status"] for row in rows}
    assert statuses == {"rich": "running", "gone": "offline", "off": "disabled", "poor": "stopped"}
    assert [row["name"] for row in selectors.leaderboard("GLOBEX")] == ["gone", "off"]
    assert selectors.leaderboard("NOPE") == []
    assert gone.enabled


@pytest.mark.django_db(transaction=True)
def test_the_leaderboard_reads_cash_and_positions_from_one_state(market, r, monkeypatch):
    """A fill the recorder commits between the leaderboard's read of cash and its read of
    positions shows in neither: equity is the state before the fill, not half of each."""
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("SQLite's read transaction is one snapshot by construction")
    agent = services.agent_config_create(name="trader", strategy="noise", symbol="ACME")
    Account.objects.filter(pk=agent.account_id).update(cash=D(100000))
    _publish_status(r, "trader", "running")
    original = selectors.exchange_selectors.position_list

    def fill_then_read(*, account_ids):
        def recorder_commits_a_fill():  # another connection: a buy of 10 at 100
            from django.db import connection as other
            from django.db import transaction

            with transaction.atomic():
                Account.objects.filter(pk=agent.account_id).update(cash=D(99000))
                Position.objects.create(
                    account_id=agent.account_id,
                    instrument=market["ACME"],
                    quantity=D(10),
                    cost_basis=D(1000),
                )
            other.close()

        thread = threading.Thread(target=recorder_commits_a_fill)
        thread.start()
        thread.join()
        return original(account_ids=account_ids)

    monkeypatch.setattr(selectors.exchange_selectors, "position_list", fill_then_read)
    (row,) = selectors.leaderboard()
    # Before the fill: 100,000 cash and no position. Mixed, it was 100,000 + 10 x 100.
    assert (row["equity"], row["position"]) == ("100000.00", "0")
    monkeypatch.setattr(selectors.exchange_selectors, "position_list", original)
    (row,) = selectors.leaderboard()
    assert (row["equity"], row["position"]) == ("100000.00", "10")  # 99,000 + 10 x 100


# --- the simulation API -----------------------------------------------------------------------


def _journal(r, symbol: str) -> list[dict]:
    return [
        {k.decode(): v.decode() for k, v in fields.items()}
        for _, fields in r.xrange(exchange_keys.key("cmd", symbol))
    ]


def test_sim_status_needs_a_login_and_controls_need_staff(market):
    assert_error(APIClient().get("/api/v1/sim/"), 401)
    assert_error(APIClient().get("/api/v1/agents/"), 401)
    alice = client_for("alice")
    status = alice.get("/api/v1/sim/")
    assert status.status_code == 200
    assert status.json() == {
        "state": "running",
        "changed_at": None,
        "runner_alive": False,
        "last_shock": None,
    }
    assert alice.get("/api/v1/agents/").json() == []
    for path in ("pause", "resume", "reset", "shock"):
        assert_error(alice.post(f"/api/v1/sim/{path}", {}, format="json"), 403)
        assert_error(APIClient().post(f"/api/v1/sim/{path}", {}, format="json"), 401)
    assert not Instrument.objects.filter(halted=True).exists()


def next_notice(pubsub) -> dict:
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        message = pubsub.get_message(timeout=0.2)  # None for the subscription confirmation
        if message is not None:
            return json.loads(message["data"])
    raise AssertionError("no notice on the sim channel")


def test_pause_and_resume_halt_the_books_and_publish(market, r, django_capture_on_commit_callbacks):
    staff = client_for("operator", staff=True)
    notices = r.pubsub(ignore_subscribe_messages=True)
    notices.subscribe(keys.sim_channel())
    time.sleep(0.05)

    with django_capture_on_commit_callbacks(execute=True):  # published after the commit
        paused = staff.post("/api/v1/sim/pause")
    assert paused.status_code == 200, paused.json()
    body = paused.json()
    assert body["state"] == "paused" and body["changed_at"].endswith("Z")
    assert all(i.halted for i in Instrument.objects.all())
    assert [e["t"] for e in _journal(r, "ACME")] == ["halt"]
    assert [e["t"] for e in _journal(r, "GLOBEX")] == ["halt"]
    assert next_notice(notices) == {"type": "sim", **body}

    with django_capture_on_commit_callbacks(execute=True):
        resumed = staff.post("/api/v1/sim/resume").json()
    assert resumed["state"] == "running"
    assert not Instrument.objects.filter(halted=True).exists()
    assert [e["t"] for e in _journal(r, "ACME")] == ["halt", "resume"]
    assert next_notice(notices)["state"] == "running"
    assert selectors.sim_status()["state"] == "running"  # the state is Redis', not a process'
    notices.close()


def test_the_sim_events_list_pauses_resumes_and_shocks_oldest_first(market, r):
    staff = client_for("operator", staff=True)
    assert staff.get("/api/v1/sim/events/").json() == []
    staff.post("/api/v1/sim/pause")
    staff.post("/api/v1/sim/resume")
    staff.post("/api/v1/sim/shock", {"symbol": "ACME", "pct": "2.5"}, format="json")
    staff.post("/api/v1/sim/shock", {"symbol": "ACME", "pct": "0"}, format="json")  # refused
    events = client_for("viewer").get("/api/v1/sim/events/").json()  # any logged-in person
    assert [e["kind"] for e in events] == ["pause", "resume", "shock"]
    assert (events[2]["symbol"], events[2]["pct"]) == ("ACME", "2.5")
    assert all(e["at"].endswith("Z") for e in events)
    assert_error(APIClient().get("/api/v1/sim/events/"), 401)


def test_shock_moves_the_reference_price_and_is_recorded(market, r):
    staff = client_for("operator", staff=True)
    answer = staff.post("/api/v1/sim/shock", {"symbol": "GLOBEX", "pct": "-5"}, format="json")
    assert answer.status_code == 200, answer.json()
    shock = answer.json()["last_shock"]
    assert (shock["symbol"], shock["pct"]) == ("GLOBEX", "-5")
    market["GLOBEX"].refresh_from_db()
    # 500 * 0.95, on the 0.05 grid
    assert market["GLOBEX"].reference_price == D("475.00")
    entries = r.xrange(keys.sim_shocks())
    assert [(f[b"symbol"], f[b"pct"]) for _, f in entries] == [(b"GLOBEX", b"-5")]

    assert_error(
        staff.post("/api/v1/sim/shock", {"symbol": "ACME", "pct": "0"}, format="json"),
        400,
        "invalid_pct",
        "pct",
    )
    assert_error(
        staff.post("/api/v1/sim/shock", {"symbol": "ACME", "pct": "-95"}, format="json"),
        400,
        "invalid_pct",
        "pct",
    )
    assert_error(
        staff.post("/api/v1/sim/shock", {"symbol": "ACME", "pct": "abc"}, format="json"), 400
    )
    assert_error(
        staff.post("/api/v1/sim/shock", {"symbol": "NOPE", "pct": "5"}, format="json"),
        404,
        "unknown_symbol",
        "symbol",
    )
    assert_error(
        staff.post("/api/v1/sim/shock", {"symbol": "ACME", "pct": "5", "x": 1}, format="json"),
        400,
        "unknown_field",
    )
    assert len(r.xrange(keys.sim_shocks())) == 1
    market["ACME"].refresh_from_db()
    assert market["ACME"].reference_price == D("100.00")


def test_a_reset_waits_for_the_engine_and_the_recorder(market, r):
    """Without an engine the RESETs sit in the journals: the simulation stays paused with the
    reset pending, resume is refused, and nothing is restored yet."""
    staff = client_for("operator", staff=True)
    account = make_account("someone")
    Account.objects.filter(pk=account.pk).update(cash=D(5))
    answer = staff.post("/api/v1/sim/reset")
    assert answer.status_code == 200
    assert answer.json()["state"] == "paused"
    assert [e["t"] for e in _journal(r, "ACME")] == ["halt", "reset"]
    assert selectors.reset_pending()["resume"] is True
    assert services.sim_reset_complete() is False
    assert_error(staff.post("/api/v1/sim/resume"), 409, "reset_in_progress")
    account.refresh_from_db()
    assert account.cash == D(5)
    # A pause meanwhile: the reset will complete paused.
    staff.post("/api/v1/sim/pause")
    assert selectors.reset_pending()["resume"] is False


def test_leaderboard_query_validation(market):
    alice = client_for("alice")
    assert_error(alice.get("/api/v1/agents/?symbol=bad%20symbol"), 400)
    assert_error(alice.get("/api/v1/agents/?other=1"), 400, "unknown_field")
    services.agent_config_create(name="n", strategy="noise", symbol="ACME")
    rows = alice.get("/api/v1/agents/?symbol=ACME").json()
    assert [row["name"] for row in rows] == ["n"] and rows[0]["status"] == "offline"


def test_the_sim_command(market, r):
    def sim(*args) -> dict:
        out, err = io.StringIO(), io.StringIO()
        call_command("sim", *args, stdout=out, stderr=err)
        sim.err = err.getvalue()
        return json.loads(out.getvalue())

    assert sim("status")["state"] == "running"
    assert sim("pause")["state"] == "paused"
    assert Instrument.objects.filter(halted=True).count() == 2
    assert sim("resume")["state"] == "running"
    shocked = sim("shock", "--symbol", "ACME", "--pct", "-5")
    assert shocked["last_shock"]["pct"] == "-5"
    market["ACME"].refresh_from_db()
    assert market["ACME"].reference_price == D("95.00")
    with pytest.raises(CommandError, match="needs --symbol and --pct"):
        sim("shock", "--symbol", "ACME")
    with pytest.raises(CommandError, match="pct must be between"):
        sim("shock", "--symbol", "ACME", "--pct", "500")
    # No engine here: the reset stays pending, and says so.
    assert sim("reset", "--wait", "0")["state"] == "paused"
    assert "pending" in sim.err
