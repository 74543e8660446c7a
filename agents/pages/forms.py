"""The research runs' form: its fields' types and bounds. What a run's inputs mean — a preset
that exists, a configuration that validates, a listed instrument to fork — is checked by
`agents.research_runs.services.run_queue`, whose errors land on the field they name."""

from django import forms

from agents.models import ResearchRun
from agents.research.presets import PRESETS
from agents.research_runs.services import RUNS_MAX, SEED_MAX

TIME_HELP = "HH:MM or HH:MM:SS; empty: the configuration's."


class ResearchRunForm(forms.Form):
    source = forms.ChoiceField(
        choices=ResearchRun.Source.choices, initial="preset", widget=forms.RadioSelect
    )
    preset = forms.ChoiceField(
        choices=[(name, name) for name in sorted(PRESETS)], initial="small", required=False
    )
    config_text = forms.CharField(
        label="Configuration",
        required=False,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 14, "spellcheck": "false", "class": "code"}),
        help_text="YAML or JSON, as `simulate --config` reads it (docs/research.md).",
    )
    fork_symbol = forms.ChoiceField(label="Instrument to fork", choices=(), required=False)
    seed = forms.IntegerField(min_value=0, max_value=SEED_MAX, initial=1)
    runs = forms.IntegerField(
        min_value=1,
        max_value=RUNS_MAX,
        initial=1,
        help_text="Seeds SEED, SEED+1, …: their facts are pooled.",
    )
    start = forms.CharField(
        required=False, max_length=16, help_text=TIME_HELP,
        widget=forms.TextInput(attrs={"placeholder": "09:30", "autocomplete": "off"}),
    )  # fmt: skip
    end = forms.CharField(
        required=False, max_length=16, help_text=TIME_HELP,
        widget=forms.TextInput(attrs={"placeholder": "16:00", "autocomplete": "off"}),
    )  # fmt: skip

    def __init__(self, *args, symbols: list[str], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["fork_symbol"].choices = [(s, s) for s in symbols]
