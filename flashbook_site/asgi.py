"""ASGI entry point: Django for HTTP, Channels for the WebSockets (`exchange/live/routing.py`,
`agents/routing.py`).

The browser's private sockets pass the origin check and the session authentication
(`exchange.live.consumers.browser_socket`); the public market data and the token-authenticated
WebSocket API for programs need no Origin header.
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "flashbook_site.settings")

# Django is set up here, before anything imports models (the routing imports the consumers).
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from agents.routing import websocket_urlpatterns as agents_sockets  # noqa: E402
from exchange.api.order_entry import OrderEntryApp  # noqa: E402
from exchange.live.routing import websocket_urlpatterns as exchange_sockets  # noqa: E402

application = ProtocolTypeRouter(
    {
        # Order entry by token is served on the event loop; all else by Django.
        "http": OrderEntryApp(django_asgi_app),
        "websocket": URLRouter(exchange_sockets + agents_sockets),
    }
)
