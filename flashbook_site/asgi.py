"""ASGI entry point: Django for HTTP, Channels for the WebSockets (`exchange/live/routing.py`,
`agents/routing.py`).

WebSockets pass the origin check (the page's origin must be one of `ALLOWED_HOSTS`, so another
site cannot open a socket with the visitor's cookies) and the session authentication, which
gives the consumers `scope["user"]`.
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "flashbook_site.settings")

# Django is set up here, before anything imports models (the routing imports the consumers).
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from agents.routing import websocket_urlpatterns as agents_sockets  # noqa: E402
from exchange.api.order_entry import OrderEntryApp  # noqa: E402
from exchange.live.routing import websocket_urlpatterns as exchange_sockets  # noqa: E402

application = ProtocolTypeRouter(
    {
        # Order entry by token is served on the event loop; all else by Django.
        "http": OrderEntryApp(django_asgi_app),
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(URLRouter(exchange_sockets + agents_sockets))
        ),
    }
)
