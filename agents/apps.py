from django.apps import AppConfig


class AgentsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "agents"
    verbose_name = "Agents"

    def ready(self) -> None:
        # The bridge relays the simulation's frames to browsers (it is the exchange's one
        # fan-out); the exchange does not know this app, so the app tells the bridge.
        from agents.live import SIM_RELAY
        from exchange.live.bridge import register_relay

        register_relay(SIM_RELAY)
