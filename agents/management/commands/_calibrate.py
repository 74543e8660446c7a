"""``python manage.py simulate calibrate --target DIR``: the calibration action of ``simulate``
(``agents/research/calibrate.py``), kept apart from the command's module so that the command
itself only dispatches to it. Django does not take a module whose name starts with ``_`` for a
command of its own."""

from __future__ import annotations

import math
import sys
from pathlib import Path

from django.core.management.base import CommandError

from agents.research.calibrate import (
    DEFAULT_MOMENTS,
    DEFAULT_PARAMETERS,
    CalibrationError,
    calibrate,
)
from agents.research.config import ConfigError, load_config, parse_time_of_day
from agents.research.moments import LobsterFileError, directory_moments
from agents.research.presets import preset


def add_calibrate_arguments(parser) -> None:
    group = parser.add_argument_group("calibrate (simulate calibrate --target DIR --out FILE)")
    group.add_argument("--target", metavar="DIR", help="LOBSTER files whose moments to match")
    group.add_argument(
        "--params", metavar="LIST",
        help=f"parameters to fit, comma-separated (default: {','.join(DEFAULT_PARAMETERS)})",
    )  # fmt: skip
    group.add_argument(
        "--moments", metavar="LIST",
        help=f"moments to match, comma-separated (default: {','.join(DEFAULT_MOMENTS)})",
    )  # fmt: skip
    group.add_argument(
        "--seeds", type=int, default=1,
        help="simulations per candidate, seeds SEED..SEED+K-1 (default 1)",
    )  # fmt: skip
    group.add_argument("--rounds", type=int, default=3, help="design rounds (default 3)")
    group.add_argument(
        "--points", type=int, help="candidates per round (default: 3 x the parameters)"
    )


def _names(text: str | None, default: tuple[str, ...]) -> list[str]:
    if text is None:
        return list(default)
    return [name.strip() for name in text.split(",") if name.strip()]


def handle_calibrate(command, options) -> None:
    if options["from_db"]:
        raise CommandError("calibrate takes --preset or --config, not --from-db")
    if not options["target"]:
        raise CommandError("calibrate needs --target DIR (the LOBSTER files to match)")
    if not options["out"]:
        raise CommandError("calibrate needs --out FILE (where the fitted configuration goes)")
    out = Path(options["out"])
    if out.suffix.lower() not in (".yaml", ".yml"):
        raise CommandError(f"--out {out}: the fitted configuration is YAML (.yaml or .yml)")
    if options["seeds"] < 1:
        raise CommandError("--seeds must be at least 1")
    try:
        full = (
            load_config(options["config"])
            if options["config"]
            else preset(options["preset"] or "small")
        )
        config = full.with_session(
            parse_time_of_day(options["start"], "--start") if options["start"] else None,
            parse_time_of_day(options["end"], "--end") if options["end"] else None,
        )
    except ConfigError as error:
        raise CommandError(f"invalid configuration: {error}") from None
    try:
        target = directory_moments(options["target"], float(config.tick_size))
    except LobsterFileError as error:
        raise CommandError(f"--target: {error}") from None
    seeds = list(range(options["seed"], options["seed"] + options["seeds"]))

    def progress(n: int, values: dict[str, float], moments: dict[str, float]) -> None:
        if not options["no_progress"]:
            text = ", ".join(f"{k}={v:.4g}" for k, v in values.items())
            sys.stderr.write(f"candidate {n}: {text}\n")

    try:
        result = calibrate(
            config, target, parameters=_names(options["params"], DEFAULT_PARAMETERS),
            moments=_names(options["moments"], DEFAULT_MOMENTS), seeds=seeds,
            rounds=options["rounds"], points=options["points"], full_config=full,
            progress=progress,
        )  # fmt: skip
    except CalibrationError as error:
        raise CommandError(str(error)) from None
    write = command.stdout.write
    write(f"{'parameter':<24}{'start':>12}{'fitted':>12}")
    for p in result.parameters:
        write(f"{p.name:<24}{p.start:>12.5g}{result.fitted[p.name]:>12.5g}")
    write(f"{'moment':<24}{'target':>12}{'start':>12}{'fitted':>12}{'noise sd':>10}")
    for k in result.moment_names:
        write(
            f"{k:<24}{result.target[k]:>12.5g}{result.start_moments[k]:>12.5g}"
            f"{result.fitted_moments[k]:>12.5g}{result.scales[k]:>10.3f}"
        )
    write(
        f"J: {result.start_cost:.3g} at the start, {result.fitted_cost:.3g} fitted; "
        f"{result.simulations} simulations in {result.wall_s:.1f} s"
    )
    _write_yaml(out, result, options["target"])
    write(f"fitted configuration: {out} (run it: simulate --config {out})")


def _write_yaml(path: Path, result, target: str) -> None:
    import yaml

    lines = [f"# Calibrated by `simulate calibrate` to the LOBSTER files in {target}.\n"]
    for p in result.parameters:
        lines.append(f"#   {p.name}: {p.start:.5g} -> {result.fitted[p.name]:.5g}\n")
    lines.append(
        f"# J = {result.fitted_cost:.4g} over "
        + ", ".join(
            f"{k} (target {result.target[k]:.4g}, fitted {result.fitted_moments[k]:.4g})"
            for k in result.moment_names
            if math.isfinite(result.fitted_moments[k])
        )
        + "\n"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(lines) + yaml.safe_dump(result.config, sort_keys=False), "utf-8")
