"""The agents app's WebSocket routes (mounted with the exchange's by `flashbook_site/asgi.py`)."""

from django.urls import path

from agents import live

websocket_urlpatterns = [
    path("ws/sim/", live.SimConsumer.as_asgi()),
]
