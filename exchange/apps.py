from django.apps import AppConfig


class ExchangeConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "exchange"
    verbose_name = "Exchange"

    def ready(self) -> None:
        # The receivers that rewrite the instruments registry after an instrument's change.
        from exchange import listing  # noqa: F401
