"""WebSocket routes (mounted by `flashbook_site/asgi.py`): the public market data, the WebSocket
API for programs (token-authenticated) and the browser's private socket (cookie-authenticated:
`consumers.browser_socket`)."""

from django.urls import path

from exchange.api.websocket import ApiConsumer
from exchange.live import consumers

websocket_urlpatterns = [
    path("ws/market/<str:symbol>/", consumers.MarketConsumer.as_asgi()),
    path("ws/v1/", ApiConsumer.as_asgi()),
    path("ws/account/", consumers.browser_socket(consumers.AccountConsumer)),
]
