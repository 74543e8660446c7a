"""The agents app's WebSocket routes (mounted with the exchange's by `flashbook_site/asgi.py`)."""

from django.urls import path

from agents import live
from exchange.live.consumers import browser_socket

websocket_urlpatterns = [
    path("ws/sim/", browser_socket(live.SimConsumer)),
]
