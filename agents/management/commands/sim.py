"""Simulation controls from the command line: status, pause, resume, reset, shock."""

import json
import time

from django.core.management.base import BaseCommand, CommandError

from agents import selectors, services
from exchange.errors import ExchangeError


class Command(BaseCommand):
    help = (
        "Show or change the simulation: `sim status`, `sim pause`, `sim resume`, `sim reset`, "
        "`sim shock --symbol ACME --pct -5`. Prints the simulation's status as JSON."
    )

    def add_arguments(self, parser):
        parser.add_argument("action", choices=["status", "pause", "resume", "reset", "shock"])
        parser.add_argument("--symbol", help="The instrument to shock.")
        parser.add_argument("--pct", help="The shock in percent, e.g. -5.")
        parser.add_argument(
            "--wait",
            type=float,
            default=30.0,
            help="reset: seconds to wait for the recorder to record the resets (0: do not wait; "
            "a running agents runner completes it).",
        )

    def handle(self, *args, action, symbol, pct, wait, **options):
        try:
            if action == "status":
                status = selectors.sim_status()
            elif action == "pause":
                status = services.sim_pause()
            elif action == "resume":
                status = services.sim_resume()
            elif action == "reset":
                status = services.sim_reset()
                deadline = time.monotonic() + wait
                while not services.sim_reset_complete():
                    if time.monotonic() >= deadline:
                        self.stderr.write(
                            "The reset is pending: the engine and the recorder have not "
                            "processed it yet. It completes once they have (a running agents "
                            "runner finishes it)."
                        )
                        break
                    time.sleep(0.2)
                status = selectors.sim_status()
            else:
                if not symbol or pct is None:
                    raise CommandError("shock needs --symbol and --pct.")
                status = services.sim_shock(symbol=symbol, pct=pct)
        except ExchangeError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(json.dumps(status))
