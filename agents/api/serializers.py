"""Shapes of the simulation and agents endpoints (decimals as strings, as everywhere in the
API; request bodies refuse unknown fields)."""

from rest_framework import serializers

from agents.selectors import AGENT_STATES, STATES
from exchange.api.serializers import SYMBOL_FORMAT, StrictSerializer
from exchange.protocol.symbols import SYMBOL_MAX


class ShockSerializer(serializers.Serializer):
    symbol = serializers.CharField()
    pct = serializers.CharField(help_text="Percent, as a decimal string: -5 is down 5 %.")
    at = serializers.CharField(help_text="ISO-8601 time of the shock.")


class SimStatusSerializer(serializers.Serializer):
    state = serializers.ChoiceField(choices=STATES)
    changed_at = serializers.CharField(allow_null=True)
    runner_alive = serializers.BooleanField()
    last_shock = ShockSerializer(allow_null=True)


class SimEventSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=["pause", "resume", "reset", "shock"])
    at = serializers.CharField()
    symbol = serializers.CharField(required=False)
    pct = serializers.CharField(required=False)


class ShockRequestSerializer(StrictSerializer):
    symbol = serializers.CharField(max_length=SYMBOL_MAX, validators=[SYMBOL_FORMAT])
    pct = serializers.DecimalField(
        max_digits=12,
        decimal_places=4,
        coerce_to_string=True,
        help_text='The jump in percent, e.g. "-5" (between -90 and 100, not 0).',
    )


class LeaderboardQuerySerializer(StrictSerializer):
    symbol = serializers.CharField(
        required=False, max_length=SYMBOL_MAX, validators=[SYMBOL_FORMAT]
    )


class LeaderboardRowSerializer(serializers.Serializer):
    name = serializers.CharField()
    strategy = serializers.CharField()
    symbol = serializers.CharField()
    equity = serializers.CharField()
    realized_pnl = serializers.CharField(help_text="Net of fees.")
    unrealized_pnl = serializers.CharField()
    fees_paid = serializers.CharField(help_text="Fees paid (rebates negative).")
    position = serializers.CharField()
    open_orders = serializers.IntegerField()
    # A plain string in the schema (a choice field would collide with the orders' status enum).
    status = serializers.CharField(help_text="One of: " + ", ".join(AGENT_STATES) + ".")
