"""Admin of the agents: their configurations with live status and P&L in the list, bulk enable
and disable, duplicate; parameters validated against the strategy with errors on the field."""

import json
from decimal import Decimal

from django import forms
from django.contrib import admin, messages
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from agents import selectors, services
from agents.forms import LIMITS, AgentLimitsForm
from agents.models import AgentConfig
from agents.strategies import STRATEGIES
from exchange.errors import ExchangeError
from exchange.protocol.decimals import decimal_str


def _bounds(entry: dict) -> str:
    if entry["choices"]:
        return "one of " + ", ".join(entry["choices"])
    low, high = entry["min"], entry["max"]
    if low is None and high is None:
        return ""
    return f"{'' if low is None else low} … {'' if high is None else high}"


def parameter_reference(strategy: str) -> str:
    """An HTML table of a strategy's parameters: name, type, default, bounds, meaning."""
    rows = format_html_join(
        "",
        "<tr><td><code>{}</code></td><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
        (
            (e["name"], e["type"], json.dumps(e["default"]), _bounds(e), e["help"])
            for e in STRATEGIES[strategy].params_cls.schema()
        ),
    )
    return format_html(
        "<table><thead><tr><th>parameter</th><th>type</th><th>default</th><th>range</th>"
        "<th>meaning</th></tr></thead><tbody>{}</tbody></table>",
        rows,
    )


class AgentConfigForm(forms.ModelForm, AgentLimitsForm):
    """The config's own fields and its limits (`AgentLimitsForm`'s fields), which live on its
    account: shown from it, written to it by `agents.services.agent_config_save`."""

    params = forms.JSONField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 8, "cols": 60, "style": "font-family: monospace"}),
        help_text=(
            'A JSON object, e.g. {"size_max": 30}. Parameters left out take their defaults '
            "(filled in on save); the table below lists them."
        ),
    )

    class Meta:
        model = AgentConfig
        fields = (
            "name",
            "strategy",
            "instrument",
            "enabled",
            "params",
            "wake_rate_hz",
        )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.account_id:  # else: the defaults of a new agent
            for name, value in selectors.agent_config_limits(self.instance).items():
                # Written plainly ("100000"), not as the column stores it ("100000.00000000").
                plain = decimal_str(value) if isinstance(value, Decimal) else value
                self.initial.setdefault(name, plain)

    def limits(self) -> dict:
        """The limits as entered (once the form is valid)."""
        return {name: self.cleaned_data[name] for name in LIMITS}

    def clean_params(self):
        value = self.cleaned_data.get("params")
        return {} if value is None else value


@admin.register(AgentConfig)
class AgentConfigAdmin(admin.ModelAdmin):
    form = AgentConfigForm

    class Media:
        css = {"all": ("css/admin_numbers.css",)}

    list_filter = ("enabled", "strategy", "instrument")
    list_select_related = ("account", "instrument")
    search_fields = ("name",)
    actions = ("enable_agents", "disable_agents", "duplicate_agents")
    readonly_fields = ("account_link", "parameter_table", "created_at", "updated_at")
    fieldsets = (
        (None, {"fields": ("name", "strategy", "instrument", "enabled")}),
        ("Behaviour", {"fields": ("params", "parameter_table", "wake_rate_hz")}),
        (
            "Money and risk",
            {
                "fields": (
                    "initial_cash",
                    "min_bankroll",
                    "max_position",
                    "max_order_qty",
                    "account_link",
                )
            },
        ),
        ("History", {"fields": ("created_at", "updated_at")}),
    )

    # --- the list, with the live columns ---

    def get_list_display(self, request):
        try:
            rows = {row["name"]: row for row in selectors.leaderboard()}
        except ExchangeError:
            rows = {}  # Redis unreachable: the list still works, without live columns

        def live(field, label):
            @admin.display(description=label)
            def column(obj):
                row = rows.get(obj.name)
                return "—" if row is None else row[field]

            # Numbers right-aligned in columns, as the exchange's admin does (`_shown`).
            number = field not in ("status",)
            column.__name__ = f"live_{field}_shown" if number else f"live_{field}"
            return column

        return (
            "name",
            "strategy",
            "instrument",
            "enabled",
            live("status", "status"),
            live("equity", "equity"),
            live("realized_pnl", "realized P&L"),
            live("unrealized_pnl", "unrealized P&L"),
            live("position", "position"),
            live("open_orders", "open orders"),
            "wake_rate_hz",
            "max_position",
        )

    @admin.display(description="max position", ordering="account__default_max_position")
    def max_position(self, obj):
        return obj.account.default_max_position

    # --- the form ---

    @admin.display(description="account")
    def account_link(self, obj):
        if not obj.account_id:
            return "created on save, with the initial cash"
        url = reverse("admin:exchange_account_change", args=[obj.account_id])
        return format_html('<a href="{}">{}</a>', url, obj.account.name)

    @admin.display(description="parameters of the strategy")
    def parameter_table(self, obj):
        if obj and obj.strategy in STRATEGIES:
            return parameter_reference(obj.strategy)
        return format_html_join(
            "", "<h4>{}</h4>{}", ((name, parameter_reference(name)) for name in STRATEGIES)
        )

    def save_model(self, request, obj, form, change):
        services.agent_config_save(config=obj, **form.limits())

    # --- actions ---

    @admin.action(description="Enable the selected agents")
    def enable_agents(self, request, queryset):
        count = services.agent_configs_set_enabled(configs=queryset, enabled=True)
        self.message_user(request, f"Enabled {count} agent(s).", messages.SUCCESS)

    @admin.action(description="Disable the selected agents (they cancel their orders)")
    def disable_agents(self, request, queryset):
        count = services.agent_configs_set_enabled(configs=queryset, enabled=False)
        self.message_user(request, f"Disabled {count} agent(s).", messages.SUCCESS)

    @admin.action(description="Duplicate the selected agents (copies start disabled)")
    def duplicate_agents(self, request, queryset):
        names = []
        for config in queryset:
            try:
                names.append(services.agent_config_duplicate(config=config).name)
            except ExchangeError as exc:
                self.message_user(request, f"{config}: {exc.message}", messages.ERROR)
        if names:
            self.message_user(request, f"Created {', '.join(names)} (disabled).", messages.SUCCESS)
