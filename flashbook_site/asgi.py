"""ASGI entry point.

Plain Django HTTP for now; WebSocket routing (Channels) is added to this module when the live
market data arrives.
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "flashbook_site.settings")

application = get_asgi_application()
