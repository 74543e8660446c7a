"""docker-compose.yml read the way Compose reads it, for the tests: YAML (with its merge keys),
then `${VAR}`, `${VAR:-default}`, `${VAR:?error}` and `$$` interpolated from given variables."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"

# What an operator must set (the file refuses to render without them), with test values.
REQUIRED = {
    "SECRET_KEY": "a-test-key-" + "k3y" * 20,
    "POSTGRES_PASSWORD": "test-password",
    "FLASHBOOK_ADMIN_PASSWORD": "test-admin-password",
}

_VARIABLE = re.compile(
    r"\$\$|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}"
)


class MissingVariable(KeyError):
    pass


def interpolate(value, variables: dict[str, str]):
    if isinstance(value, dict):
        return {key: interpolate(item, variables) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, variables) for item in value]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match) -> str:
        if match.group(0) == "$$":
            return "$"
        name, op, arg = match.group("name", "op", "arg")
        present = variables.get(name)
        if op in (":-", "-"):
            return present if present not in (None, "") or (op == "-" and present == "") else arg
        if op in (":?", "?"):
            if present in (None, "") and not (op == "?" and present == ""):
                raise MissingVariable(f"{name}: {arg}")
            return present
        return present or ""

    return _VARIABLE.sub(substitute, value)


def load(variables: dict[str, str] | None = None) -> dict:
    """The compose file with `variables` (default: just the required ones) interpolated."""
    raw = yaml.safe_load(COMPOSE_FILE.read_text())
    return interpolate(raw, REQUIRED if variables is None else variables)


def service_environment(service: dict) -> dict[str, str]:
    environment = service.get("environment") or {}
    if isinstance(environment, list):
        environment = dict(item.split("=", 1) for item in environment)
    return {key: "" if value is None else str(value) for key, value in environment.items()}
