"""The Procfile `make run` starts with honcho (and `make bench-idle` reads): every role of a
deployment, each a command that exists."""

import shlex
from pathlib import Path

from django.core.management import get_commands
from honcho.environ import parse_procfile

ROOT = Path(__file__).resolve().parents[2]


def test_the_procfile_starts_every_role_with_a_real_command():
    roles = parse_procfile((ROOT / "Procfile").read_text()).processes
    assert set(roles) == {"web", "engine", "recorder", "bridge", "agents"}
    commands = get_commands()
    for name, line in roles.items():
        words = shlex.split(line)
        assert words[0] == "python", (name, line)
        if words[1] == "manage.py":
            assert words[2] in commands, (name, words[2])
        else:
            assert words[1:3] == ["-m", "uvicorn"] and "$PORT" in line, (name, line)
