"""The Procfile `make run` starts with honcho (and `make bench-idle` reads): every role of a
deployment, each a command that exists."""

import os
import shlex
from pathlib import Path

from django.core.management import get_commands
from honcho.environ import parse_procfile

ROOT = Path(__file__).resolve().parents[2]


def test_the_procfile_starts_every_role_with_a_real_command():
    roles = parse_procfile((ROOT / "Procfile").read_text()).processes
    assert set(roles) == {"web", "engine", "recorder", "bridge", "agents", "fix", "research"}
    commands = get_commands()
    for name, line in roles.items():
        words = shlex.split(line)
        assert words[0] == "python", (name, line)
        if words[1] == "manage.py":
            assert words[2] in commands, (name, words[2])
        else:
            assert words[1:3] == ["-m", "uvicorn"] and "$PORT" in line, (name, line)


def test_the_fix_role_takes_its_port_from_the_settings():
    """`make run` starts the FIX acceptor on FLASHBOOK_FIX_PORT (9878 unless set), not $PORT."""
    from django.conf import settings

    line = parse_procfile((ROOT / "Procfile").read_text()).processes["fix"]
    assert shlex.split(line) == ["python", "manage.py", "run_fix"]
    assert settings.FLASHBOOK_FIX_PORT == int(os.environ.get("FLASHBOOK_FIX_PORT", "9878"))
