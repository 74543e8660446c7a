"""Agent configurations: who trades what, with which strategy and parameters.

Each configuration owns an exchange `Account` (created with the initial bankroll) through which
its orders go. The agent's limits — initial cash, minimum bankroll, maximum position (carried on
every order and checked by the engine), order size — live on that account and nowhere else:
staff edit them on the agent's admin page (`agents.forms.AgentLimitsForm`), and
`agents.services.agent_config_save` writes them to the account through `exchange.services`.
"""

from django.conf import settings
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


class ResearchRun(models.Model):
    """A research run (`python manage.py simulate`) queued by staff from the site and executed
    by `run_research`, one at a time per worker (`agents.research_runs`).

    Its source is a preset, a configuration (YAML or JSON text, validated when queued) or a fork
    of a live instrument (`simulate --fork`). A worker owns a running row through
    `worker_token` and keeps `heartbeat_at` fresh; a row whose worker is gone goes back to the
    queue and starts over (a run is a pure function of its inputs, so nothing is lost)."""

    class State(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"
        CANCELLED = "cancelled"

    class Source(models.TextChoices):
        PRESET = "preset", "A preset"
        CONFIG = "config", "A configuration"
        FORK = "fork", "A fork of a live instrument"

    queued_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    source = models.CharField(max_length=8, choices=Source.choices)
    preset = models.CharField(max_length=32, blank=True)
    config_text = models.TextField(blank=True)
    fork_symbol = models.CharField(max_length=16, blank=True)
    seed = models.PositiveIntegerField(default=1)
    runs = models.PositiveSmallIntegerField(default=1)
    #: The session, "HH:MM[:SS]"; empty: the configuration's.
    start = models.CharField(max_length=16, blank=True)
    end = models.CharField(max_length=16, blank=True)

    state = models.CharField(
        max_length=10, choices=State.choices, default=State.QUEUED, db_index=True
    )
    cancel_requested = models.BooleanField(default=False)
    #: Simulated seconds done and in all (over every seed), and messages written so far.
    done_s = models.FloatField(default=0.0)
    total_s = models.FloatField(default=0.0)
    messages = models.BigIntegerField(default=0)
    error = models.TextField(blank=True)
    #: Where its files go (created by the worker; `RESEARCH_RUNS_DIR/<id>/out`).
    out_dir = models.CharField(max_length=500, blank=True)
    attempts = models.PositiveIntegerField(default=0)

    worker_host = models.CharField(max_length=255, blank=True)
    worker_pid = models.IntegerField(null=True, blank=True)
    worker_token = models.CharField(max_length=64, blank=True)
    child_pid = models.IntegerField(null=True, blank=True)

    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"research run {self.pk} ({self.state})"

    @property
    def finished(self) -> bool:
        return self.state in (self.State.DONE, self.State.FAILED, self.State.CANCELLED)

    @property
    def source_label(self) -> str:
        if self.source == self.Source.PRESET:
            return f"preset {self.preset}"
        if self.source == self.Source.FORK:
            return f"fork of {self.fork_symbol}"
        return "configuration"
