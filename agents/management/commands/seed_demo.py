"""Demo data for a fresh installation: the exchange's (`seed_demo_market`: instruments, the demo
logins) and a default population of agents per demo instrument (idempotent: what exists is left
as configured)."""

from django.core.management import call_command
from django.core.management.base import BaseCommand

from agents.services import agent_config_ensure

# Parameters are in ticks and lots, so they depend on how many ticks 1 % of the price is: ACME
# trades at 10,000 ticks (1 % = 100 ticks), GLOBEX at 850 (1 % = 8.5 ticks). The fundamental
# value wanders about ±1 % around the reference price (agents.runner.market), with jumps.
#   kind, strategy, count, wakes/s, engine max position (lots), params
POPULATIONS = {
    "ACME": [
        (
            "mm",
            "market_maker",
            2,
            4.0,
            100,
            {"levels": 3, "size": 5, "half_spread": 1.0, "skew": 0.1, "max_inventory": 60},
        ),
        (
            "noise",
            "noise",
            10,
            1.0,
            30,
            {"size_max": 20, "offset_mean": 3.0, "cross_prob": 0.25, "stale_ticks": 50},
        ),
        (
            "momentum",
            "momentum",
            3,
            0.5,
            30,
            {"fast_s": 5.0, "slow_s": 30.0, "trade_size": 3, "max_position": 25},
        ),
        (
            "value",
            "value",
            6,
            1.0,
            100,
            {
                "bias_ticks": 3.0,
                "noise_ticks": 5.0,
                "slip_ticks": 3,
                "trade_size": 10,
                "max_position": 100,
            },
        ),
    ],
    "GLOBEX": [
        (
            "mm",
            "market_maker",
            2,
            4.0,
            100,
            {
                "levels": 3,
                "size": 5,
                "half_spread": 1.0,
                "skew": 0.05,
                "max_inventory": 60,
                "shock_ticks": 4,
            },
        ),
        (
            "noise",
            "noise",
            10,
            1.0,
            30,
            {"size_max": 20, "offset_mean": 1.5, "cross_prob": 0.25, "stale_ticks": 10},
        ),
        (
            "momentum",
            "momentum",
            3,
            0.5,
            30,
            {
                "fast_s": 5.0,
                "slow_s": 30.0,
                "threshold_ticks": 0.5,
                "trade_size": 3,
                "max_position": 25,
            },
        ),
        (
            "value",
            "value",
            6,
            1.0,
            100,
            {
                "bias_ticks": 0.5,
                "noise_ticks": 1.0,
                "threshold_ticks": 1.0,
                "aggressive_ticks": 4.0,
                "slip_ticks": 1,
                "trade_size": 10,
                "max_position": 100,
            },
        ),
    ],
}


def demo_population(symbol: str):
    """(name, strategy, wakes/s, max position, params) of the demo agents of an instrument."""
    for kind, strategy, count, rate, max_position, params in POPULATIONS.get(symbol, []):
        for number in range(1, count + 1):
            yield f"{symbol.lower()}-{kind}-{number:02d}", strategy, rate, max_position, params


class Command(BaseCommand):
    help = (
        "Create the demo instruments, logins and agents if they are missing (safe to run "
        "again; existing ones are left as configured)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--no-agents", action="store_true", help="Only the instruments and the logins."
        )

    def handle(self, *args, **options):
        call_command("seed_demo_market", stdout=self.stdout)
        if options["no_agents"]:
            return
        for symbol in POPULATIONS:
            created = 0
            for name, strategy, rate, max_position, params in demo_population(symbol):
                _, new = agent_config_ensure(
                    name=name,
                    strategy=strategy,
                    symbol=symbol,
                    params=params,
                    wake_rate_hz=rate,
                    max_position=max_position,
                )
                created += new
            self.stdout.write(f"agents of {symbol}: {created} created")
