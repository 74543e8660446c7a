"""The live agents runner (`manage.py run_agents`)."""

from agents.runner.runner import Runner, RunnerStats

__all__ = ["Runner", "RunnerStats"]
