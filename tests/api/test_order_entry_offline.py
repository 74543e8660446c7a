"""The asyncio order path when Redis cannot be reached: 503, and nothing written anywhere."""

import asyncio

import pytest
from django.contrib.auth import get_user_model

from exchange.errors import Unavailable
from exchange.models import Account, Order
from exchange.orders import gateway

from .support import make_instrument


@pytest.mark.django_db(transaction=True)
def test_redis_unreachable_answers_503_and_writes_nothing(settings):
    instrument = make_instrument()
    user = get_user_model().objects.create_user(username="offline")
    account = Account.objects.create(user=user, name="offline")
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    request = gateway.OrderRequest(symbol=instrument.symbol, side="buy", quantity=1, price=99)

    async def submit():
        return await gateway.order_submit(account=account, request=request, wait=0)

    with pytest.raises(Unavailable) as exc:
        asyncio.run(submit())
    assert exc.value.code == "unavailable"
    assert not Order.objects.exists()
