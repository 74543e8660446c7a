"""Agent configurations: who trades what, with which strategy and parameters.

Each configuration owns an exchange `Account` (created with the initial bankroll) through which
its orders go. The agent's limits — initial cash, minimum bankroll, maximum position (carried on
every order and checked by the engine), order size — live on that account and nowhere else:
staff edit them on the agent's admin page (`agents.forms.AgentLimitsForm`), and
`agents.services.agent_config_save` writes them to the account through `exchange.services`.
"""

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models

from agents.strategies import STRATEGIES, ParamError, validate_params
from exchange.models import Account, Instrument

NAME_VALIDATOR = RegexValidator(
    r"^[A-Za-z0-9._-]{1,64}$", "Use 1-64 characters: letters, digits, '.', '_' or '-'."
)
ACCOUNT_PREFIX = "agent:"  # account names of agents; ':' never appears in a username


class AgentConfig(models.Model):
    name = models.CharField(max_length=64, unique=True, validators=[NAME_VALIDATOR])
    strategy = models.CharField(max_length=32, choices=[(name, name) for name in STRATEGIES])
    instrument = models.ForeignKey(
        Instrument, on_delete=models.PROTECT, related_name="agent_configs"
    )
    account = models.OneToOneField(
        Account, on_delete=models.PROTECT, related_name="agent_config", editable=False
    )
    params = models.JSONField(
        default=dict,
        blank=True,
        help_text="The strategy's parameters as a JSON object; missing ones take their defaults.",
    )
    wake_rate_hz = models.FloatField(
        "mean wake rate (per second)",
        default=1.0,
        validators=[MinValueValidator(0.001), MaxValueValidator(1000.0)],
        help_text="The agent wakes on a Poisson clock with this mean rate.",
    )
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["instrument__symbol", "name"]
        verbose_name = "agent"

    def __str__(self) -> str:
        return self.name

    @property
    def account_name(self) -> str:
        return f"{ACCOUNT_PREFIX}{self.name}"

    def clean(self) -> None:
        if self.strategy not in STRATEGIES:
            return  # the field's own choices validation reports it
        try:
            validated = validate_params(self.strategy, self.params)
        except ParamError as exc:
            if exc.field == "strategy":
                raise ValidationError({"strategy": exc.message}) from None
            where = "" if exc.field == "__all__" else f"{exc.field}: "
            raise ValidationError({"params": f"{where}{exc.message}"}) from None
        self.params = validated.to_dict()  # defaults filled in, so the form shows them all
