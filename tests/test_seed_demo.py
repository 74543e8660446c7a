from collections import Counter
from decimal import Decimal as D

import pytest
from django.core.management import call_command

from agents.management.commands.seed_demo import demo_population
from agents.models import AgentConfig
from agents.strategies import validate_params
from exchange.models import Instrument


@pytest.mark.django_db
def test_seed_demo_creates_tradeable_instruments_and_is_idempotent():
    call_command("seed_demo")
    call_command("seed_demo")
    instruments = {i.symbol: i for i in Instrument.objects.all()}
    assert set(instruments) == {"ACME", "GLOBEX"}
    for instrument in instruments.values():
        assert instrument.enabled and not instrument.halted
        assert instrument.is_on_tick(instrument.reference_price)
        assert instrument.is_whole_lots(instrument.min_order_qty)


@pytest.mark.django_db
def test_seed_demo_creates_a_population_per_instrument_and_leaves_edits_alone():
    call_command("seed_demo")
    configs = list(AgentConfig.objects.select_related("account", "instrument"))
    seeded = {
        name: max_position
        for symbol in ("ACME", "GLOBEX")
        for name, _, _, max_position, _ in demo_population(symbol)
    }
    for symbol in ("ACME", "GLOBEX"):
        mix = Counter(c.strategy for c in configs if c.instrument.symbol == symbol)
        assert mix == {"noise": 10, "market_maker": 2, "momentum": 3, "value": 6}, mix
    for config in configs:
        validate_params(config.strategy, config.params)  # valid, defaults filled in
        assert config.enabled
        account = config.account
        assert account.name == f"agent:{config.name}"
        assert account.cash == account.initial_cash == D(100000)  # an agent's default
        assert account.min_bankroll == D(50000) and account.max_order_qty == 1000
        assert account.default_max_position == seeded[config.name]
        # Strategies size inside the engine's limit, which carries every order.
        inner = config.params.get("max_position")
        assert inner is None or inner <= account.default_max_position
        if config.strategy == "noise":
            assert config.params["size_max"] <= account.default_max_position
    edited = configs[0]
    edited.wake_rate_hz = 9.0
    edited.save()
    call_command("seed_demo")
    assert AgentConfig.objects.get(pk=edited.pk).wake_rate_hz == 9.0
    assert AgentConfig.objects.count() == len(configs)


@pytest.mark.django_db
def test_seed_demo_without_agents():
    call_command("seed_demo", "--no-agents")
    assert Instrument.objects.count() == 2 and not AgentConfig.objects.exists()
