"""WebSocket routes (mounted by `flashbook_site/asgi.py`)."""

from django.urls import path

from exchange.live import consumers

websocket_urlpatterns = [
    path("ws/market/<str:symbol>/", consumers.MarketConsumer.as_asgi()),
    path("ws/account/", consumers.AccountConsumer.as_asgi()),
]
