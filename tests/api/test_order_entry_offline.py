"""The asyncio order path when Redis cannot be reached."""

import asyncio

import pytest
from django.contrib.auth import get_user_model
from django.db import connections

from exchange import gateway, order_store
from exchange.models import Account, Order, OrderStatus
from tests.recorder.conftest import _sqlite_file

from .support import make_instrument


def test_redis_unreachable_answers_503_and_rejects_the_order(
    tmp_path, settings, django_db_setup, django_db_blocker
):
    """The fast path in-process (no server needed for this one): Redis refuses the connection, so
    nothing can be journaled — the row is marked rejected and the answer is 503."""
    with django_db_blocker.unblock(), _sqlite_file(tmp_path / "db.sqlite3"):
        from django.core.management import call_command

        call_command("migrate", verbosity=0, interactive=False)
        instrument = make_instrument()
        user = get_user_model().objects.create_user(username="offline")
        account = Account.objects.create(user=user, name="offline")
        settings.REDIS_URL = "redis://127.0.0.1:1/0"
        request = gateway.OrderRequest(symbol=instrument.symbol, side="buy", quantity=1, price=99)

        async def submit():
            return await gateway.aorder_submit(account=account, request=request, wait=0)

        with pytest.raises(gateway.Unavailable):
            asyncio.run(submit())
        order = Order.objects.get(account=account)
        assert order.status == OrderStatus.REJECTED and order.order_id is None
        order_store.close_connections()
        connections.close_all()
