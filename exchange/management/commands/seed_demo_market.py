"""Demo data of the exchange for a fresh installation: the demo instruments and logins
(idempotent: what exists is left as configured). `seed_demo` (the agents app's) runs it first."""

from decimal import Decimal

from django.core.management import call_command
from django.core.management.base import BaseCommand

from exchange.services import instrument_ensure

DEMO_INSTRUMENTS = [
    # symbol, name, tick, lot, min qty, max qty, reference price, maker and taker fees (bps):
    # a maker rebate and a taker fee, as many venues charge them.
    ("ACME", "Acme Corporation", "0.01", "1", "1", "10000", "100.00", -1, 3),
    ("GLOBEX", "Globex Industries", "0.05", "10", "10", "100000", "42.50", 0, 2),
]


class Command(BaseCommand):
    help = "Create the demo instruments and logins if they are missing (safe to run again)."

    def handle(self, *args, **options):
        for symbol, name, tick, lot, low, high, reference, maker, taker in DEMO_INSTRUMENTS:
            _, created = instrument_ensure(
                symbol=symbol,
                name=name,
                tick_size=Decimal(tick),
                lot_size=Decimal(lot),
                min_order_qty=Decimal(low),
                max_order_qty=Decimal(high),
                reference_price=Decimal(reference),
                maker_fee_bps=maker,
                taker_fee_bps=taker,
            )
            self.stdout.write(f"instrument {symbol}: {'created' if created else 'already present'}")
        call_command("ensure_demo_users", stdout=self.stdout)
