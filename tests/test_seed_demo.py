import pytest
from django.core.management import call_command

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
