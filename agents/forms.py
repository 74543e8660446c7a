"""An agent's limits, as staff and the services give them: their bounds, their defaults for a new
agent and their help texts, in one place (the admin's agent form includes these fields).

They live on the agent's exchange `Account`, which the gateway and the engine enforce them from;
`agents.services.agent_config_save` writes them there through `exchange.services`."""

from decimal import Decimal

from django import forms


def _money(**kwargs) -> forms.DecimalField:
    return forms.DecimalField(max_digits=24, decimal_places=8, min_value=Decimal(0), **kwargs)


class AgentLimitsForm(forms.Form):
    initial_cash = _money(
        initial=Decimal("100000"), help_text="The bankroll: the account's cash after a reset."
    )
    min_bankroll = _money(
        initial=Decimal("50000"),
        help_text="Below this equity the agent stops and cancels its orders.",
    )
    max_position = forms.IntegerField(
        min_value=1,
        initial=100,
        help_text="Largest exposure in lots, open orders included (enforced by the engine).",
    )
    max_order_qty = forms.IntegerField(
        label="max order size",
        min_value=1,
        initial=1000,
        help_text="Largest single order, in lots (enforced by the gateway).",
    )


#: The limits' names (as `exchange.services.account_limits_set` takes them).
LIMITS = tuple(AgentLimitsForm.base_fields)
#: The limits of a new agent when not given.
DEFAULT_LIMITS = {name: field.initial for name, field in AgentLimitsForm.base_fields.items()}
