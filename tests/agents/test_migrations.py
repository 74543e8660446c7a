"""agents 0002: the limits leave the agent config for its account, the data with them."""

from decimal import Decimal as D

import pytest

from tests.migrations import latest, migrate

BEFORE = [("agents", "0001_initial")]
AFTER = [("agents", "0002_limits_live_on_the_account")]


@pytest.mark.django_db(transaction=True)
def test_the_configs_limits_move_to_the_account_and_back():
    newest = latest()
    try:
        apps = migrate(BEFORE)
        Instrument = apps.get_model("exchange", "Instrument")
        Account = apps.get_model("exchange", "Account")
        AgentConfig = apps.get_model("agents", "AgentConfig")
        instrument = Instrument.objects.create(
            symbol="ACME", name="Acme", tick_size=D("0.01"), lot_size=D(1),
            min_order_qty=D(1), max_order_qty=D(1000), reference_price=D(100),
        )  # fmt: skip
        limits = {"max_position": 80, "max_order_qty": 20, "initial_cash": D(25000),
                  "min_bankroll": D(5000)}  # fmt: skip
        in_line = Account.objects.create(
            name="agent:a", cash=D(7), initial_cash=D(25000), min_bankroll=D(5000),
            default_max_position=80, max_order_qty=20,
        )  # fmt: skip
        # Changed on the account since the last save of its config: the config's value wins.
        drifted = Account.objects.create(
            name="agent:b", cash=D(9), initial_cash=D(1), min_bankroll=D(2),
            default_max_position=3, max_order_qty=4,
        )  # fmt: skip
        for name, account in (("a", in_line), ("b", drifted)):
            AgentConfig.objects.create(
                name=name, strategy="noise", instrument=instrument, account=account, **limits
            )

        apps = migrate(AFTER)
        Account = apps.get_model("exchange", "Account")
        got = {
            a.name: (a.cash, a.initial_cash, a.min_bankroll, a.default_max_position,
                     a.max_order_qty)
            for a in Account.objects.all()
        }  # fmt: skip
        assert got == {
            "agent:a": (D(7), D(25000), D(5000), 80, 20),
            "agent:b": (D(9), D(25000), D(5000), 80, 20),  # the cash stays what it was
        }
        AgentConfig = apps.get_model("agents", "AgentConfig")
        assert not hasattr(AgentConfig.objects.first(), "max_position")

        # Back: the config's fields filled from the account.
        Account.objects.filter(name="agent:a").update(default_max_position=55)
        apps = migrate(BEFORE)
        AgentConfig = apps.get_model("agents", "AgentConfig")
        assert dict(AgentConfig.objects.values_list("name", "max_position")) == {"a": 55, "b": 80}
    finally:
        migrate(newest)
