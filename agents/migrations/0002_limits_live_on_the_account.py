"""An agent's limits live on its account only: the config's copies are dropped.

`agents.services.agent_config_save` copied them from the config onto the account at every save,
so the account holds them already. Should one have been changed on the account since (in the
exchange's admin, say), the config's value — what the agent's page showed and its runner used — is
copied over first, so every agent keeps the limits it was configured with. Reversible: going
back, the config's fields are filled from the account."""

from django.db import migrations

# (config field, account field)
LIMITS = (
    ("initial_cash", "initial_cash"),
    ("min_bankroll", "min_bankroll"),
    ("max_position", "default_max_position"),
    ("max_order_qty", "max_order_qty"),
)


def config_to_account(apps, schema_editor):
    AgentConfig = apps.get_model("agents", "AgentConfig")
    for config in AgentConfig.objects.select_related("account").iterator():
        account = config.account
        changed = [
            to for field, to in LIMITS if getattr(account, to) != getattr(config, field)
        ]
        if changed:
            for field, to in LIMITS:
                setattr(account, to, getattr(config, field))
            account.save(update_fields=changed)


def account_to_config(apps, schema_editor):
    AgentConfig = apps.get_model("agents", "AgentConfig")
    for config in AgentConfig.objects.select_related("account").iterator():
        for field, to in LIMITS:
            setattr(config, field, getattr(config.account, to))
        config.save(update_fields=[field for field, _ in LIMITS])


class Migration(migrations.Migration):
    dependencies = [
        ("agents", "0001_initial"),
    ]

    operations = [
        migrations.RunPython(config_to_account, account_to_config, elidable=False),
        migrations.RemoveField(model_name="agentconfig", name="initial_cash"),
        migrations.RemoveField(model_name="agentconfig", name="max_order_qty"),
        migrations.RemoveField(model_name="agentconfig", name="max_position"),
        migrations.RemoveField(model_name="agentconfig", name="min_bankroll"),
    ]
