"""``python manage.py simulate``: a headless, seeded research simulation (see docs/research.md)."""

from __future__ import annotations

import json
import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from agents.research.branches import simulate_fork
from agents.research.config import ConfigError, config_from_mapping, load_config, parse_time_of_day
from agents.research.fork import capture, parse_branch, read_capture
from agents.research.from_db import config_from_agent_rows
from agents.research.manifest import read_manifest
from agents.research.outputs import COLUMNAR_TABLES, FORMATS, TABLES, parse_output_choice
from agents.research.presets import PRESETS, preset
from agents.research.progress import ProgressFile
from agents.research.run import simulate, simulate_seeds
from agents.research.verify import verify_run

from ._calibrate import add_calibrate_arguments, handle_calibrate


class Command(BaseCommand):
    help = (
        "Simulate a trading day headless (no Redis, no database unless --from-db) and write "
        "LOBSTER files, trades, per-agent results, summary.json, manifest.json and a realism "
        "report to --out. `simulate verify DIR` re-runs DIR's manifest and checks every file."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "action", nargs="?", choices=["verify", "calibrate"],
            help="verify DIR: re-run the run in DIR from its manifest and check every byte; "
            "calibrate: fit parameters to the LOBSTER files of --target (docs/research.md)",
        )  # fmt: skip
        parser.add_argument("directory", nargs="?", metavar="DIR", help="with verify: the run")
        source = parser.add_mutually_exclusive_group()
        source.add_argument("--preset", choices=sorted(PRESETS), help="a built-in population")
        source.add_argument("--config", metavar="FILE", help="a YAML or JSON configuration")
        source.add_argument(
            "--from-db", action="store_true", help="the enabled agents configured in the admin"
        )
        source.add_argument(
            "--fork", metavar="SYMBOL",
            help="start from the live market of SYMBOL as it is now: the engine's book, the "
            "instrument's rules, the enabled agents with their accounts, the fundamental value",
        )  # fmt: skip
        source.add_argument(
            "--fork-file", metavar="FILE",
            help="start from a fork captured before (a fork run's fork.json)",
        )  # fmt: skip
        parser.add_argument(
            "--minutes", type=float, default=60.0,
            help="with --fork: how long the fork runs, in simulated minutes (default 60)",
        )  # fmt: skip
        parser.add_argument(
            "--branch", action="append", default=[], metavar="CHANGES",
            help="with --fork/--fork-file: a counterfactual run beside the market as it is, e.g. "
            "'without=maker-1', 'shock=-3@10' (percent at minutes), 'tick=0.05', 'fees=-1/3' "
            "(maker/taker bps), 'band=5'; join changes with ';'; repeat for more branches",
        )  # fmt: skip
        parser.add_argument("--symbol", help="with --from-db: the symbol to simulate")
        parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
        parser.add_argument(
            "--runs", type=int, default=1,
            help="simulate seeds SEED..SEED+RUNS-1 into OUT/seed-N and pool their facts",
        )  # fmt: skip
        parser.add_argument("--start", help="session start, HH:MM[:SS] (default: the config's)")
        parser.add_argument("--end", help="session end, HH:MM[:SS] (default: the config's)")
        parser.add_argument("--out", metavar="DIR", help="output directory")
        parser.add_argument(
            "--outputs", metavar="LIST",
            help=f"tables to write, comma-separated, from: {','.join(TABLES)} (default: all)",
        )  # fmt: skip
        parser.add_argument(
            "--formats", metavar="LIST",
            help=f"formats of {', '.join(COLUMNAR_TABLES)}: {','.join(FORMATS)} (default: CSV, "
            "and Parquet for the messages and trades)",
        )  # fmt: skip
        parser.add_argument("--no-report", action="store_true", help="skip the realism report")
        parser.add_argument(
            "--check-facts", action="store_true",
            help="exit with an error unless every stylized fact is met",
        )  # fmt: skip
        parser.add_argument("--no-progress", action="store_true", help="no progress bar")
        add_calibrate_arguments(parser)
        parser.add_argument(
            "--progress-file", metavar="PATH",
            help="also write the progress to PATH as JSON (replaced about once a second; for a "
            "program watching the run: agents/research/progress.py)",
        )  # fmt: skip

    def handle(self, *args, **options):
        if options["action"] == "verify":
            return self._verify(options)
        if options["action"] == "calibrate":
            return handle_calibrate(self, options)
        if options["directory"]:
            raise CommandError(f"unexpected argument {options['directory']!r}")
        if not options["out"]:
            raise CommandError("the following arguments are required: --out")
        if options["runs"] < 1:
            raise CommandError("--runs must be at least 1")
        seeds = list(range(options["seed"], options["seed"] + options["runs"]))
        out = Path(options["out"])
        try:
            outputs = parse_output_choice(options["outputs"], options["formats"])
            if options["fork"] or options["fork_file"]:
                return self._fork(options, seeds, out, outputs)  # its configuration is captured
            if options["branch"]:
                raise CommandError("--branch needs --fork or --fork-file")
            config = self._config(options).with_session(
                parse_time_of_day(options["start"], "--start") if options["start"] else None,
                parse_time_of_day(options["end"], "--end") if options["end"] else None,
            )
        except ConfigError as error:
            raise CommandError(f"invalid configuration: {error}") from None
        tick, sinks = self._progress(options, config, len(seeds))
        report = not options["no_report"]
        try:
            if len(seeds) == 1:
                result = simulate(
                    config, seeds[0], out, report=report, outputs=outputs,
                    progress=None if tick is None else (lambda t, m: tick(seeds[0], t, m)),
                )  # fmt: skip
                results, facts = [result], result.summary["stylized_facts"]
            else:
                results, facts = simulate_seeds(
                    config, seeds, out, report=report, outputs=outputs, progress=tick
                )
        finally:
            for sink in sinks:
                sink.close()
        for r in results:
            d = r.data
            self.stdout.write(
                f"seed {r.seed}: {d.messages:,} messages, {d.trades:,} trades in "
                f"{d.wall_s:.1f} s ({d.messages / max(d.wall_s, 1e-9):,.0f} messages/s) "
                f"-> {r.out_dir}"
            )
        for fact in facts["facts"]:
            mark = "met    " if fact["met"] else "NOT met"
            self.stdout.write(f"  {mark}  {fact['name']}: {json.dumps(fact['value'])}")
        # The deeper facts are reported; --check-facts keeps to the four above.
        for fact in facts.get("deeper", {}).get("facts", []):
            # met None: not measurable in this run (the impact law without execution agents).
            mark = {True: "met    ", False: "NOT met", None: "n/a    "}[fact["met"]]
            self.stdout.write(f"  {mark}  (deeper) {fact['name']}: {json.dumps(fact['value'])}")
        if report and outputs.wants("report"):
            self.stdout.write(f"report: {out / 'report.html'}")
        self.stdout.write(f"manifest: {out / 'manifest.json'} (check it: simulate verify {out})")
        if options["check_facts"] and not all(f["met"] for f in facts["facts"]):
            raise CommandError("not every stylized fact is met")

    def _verify(self, options):
        if not options["directory"]:
            raise CommandError("verify needs the run's directory: simulate verify DIR")
        directory = Path(options["directory"])
        try:
            manifest = read_manifest(directory)
            config = config_from_mapping(manifest["config"])
        except (ValueError, ConfigError) as error:
            raise CommandError(str(error)) from None
        seeds = [int(s) for s in manifest["seeds"]]
        bar = None if options["no_progress"] else _ProgressBar(config, self.stderr, len(seeds))
        try:
            result = verify_run(directory, progress=None if bar is None else bar.update)
        finally:
            if bar is not None:
                bar.close()
        for note in result.notes:
            self.stdout.write(f"note: {note}")
        if not result.ok:
            for problem in result.problems:
                self.stderr.write(f"DIFFERS  {problem}")
            raise CommandError(
                f"verify failed: {len(result.problems)} problem(s) in {result.checked} file(s)"
            )
        self.stdout.write(
            f"verified: all {result.checked} files of {directory} re-made byte for byte "
            f"(seeds {', '.join(map(str, seeds))})"
        )

    def _fork(self, options, seeds, out, outputs):
        if options["start"] or options["end"]:
            raise CommandError("a fork starts when it is captured: use --minutes, not --start")
        try:
            branches = [parse_branch(text) for text in options["branch"]]
            if options["fork_file"]:
                captured = read_capture(options["fork_file"])
            else:
                captured = capture(options["fork"], minutes=options["minutes"])
                self.stdout.write(
                    f"forked {captured.symbol} at {captured.captured_at} (journal entry "
                    f"{captured.journal_id})"
                )
        except ConfigError as error:
            raise CommandError(f"invalid fork: {error}") from None
        except ValueError as error:
            raise CommandError(str(error)) from None
        runs = len(seeds) * (1 + len([b for b in branches if b.name != "as-is"]))
        tick, sinks = self._progress(options, captured.base_config(), runs)
        try:
            _, comparison = simulate_fork(
                captured, branches, seeds, out, report=not options["no_report"], outputs=outputs,
                progress=tick,
            )  # fmt: skip
        except ConfigError as error:
            raise CommandError(f"invalid fork: {error}") from None
        finally:
            for sink in sinks:
                sink.close()
        for row in comparison["branches"]:
            figures = row["figures"]

            def mean(key, figures=figures):
                value = figures.get(key, {}).get("mean")
                return "—" if value is None else f"{value:,.4g}"

            self.stdout.write(
                f"{row['name']}: close {mean('close_mid')}, change {mean('return_pct')} %, "
                f"spread {mean('mean_spread_ticks')} ticks, {mean('trades')} trades -> "
                f"{out / row['name']}"
            )
        self.stdout.write(f"comparison: {out / 'comparison.html'}")
        self.stdout.write(f"manifest: {out / 'manifest.json'} (check it: simulate verify {out})")

    def _progress(self, options, config, runs: int):
        """The progress bar and the progress file (``--progress-file``) as one callback
        ``(run, elapsed_ns, messages)``, and the sinks to close afterwards."""
        sinks: list = []
        if not options["no_progress"]:
            sinks.append(_ProgressBar(config, self.stderr, runs))
        if options["progress_file"]:
            session_s = (config.end_ns - config.start_ns) / 1e9
            sinks.append(ProgressFile(options["progress_file"], session_s=session_s, runs=runs))
        tick = (lambda s, t, m: [sink.update(s, t, m) for sink in sinks]) if sinks else None
        return tick, sinks

    def _config(self, options):
        if options["config"]:
            return load_config(options["config"])
        if options["from_db"]:
            from agents.selectors import agent_configs_enabled

            symbols = [options["symbol"]] if options["symbol"] else None
            return config_from_agent_rows(agent_configs_enabled(symbols), symbol=options["symbol"])
        return preset(options["preset"] or "rmsc04")


class _ProgressBar:
    """tqdm over simulated seconds, with the messages per second of wall time."""

    def __init__(self, config, stream, runs: int) -> None:
        from tqdm import tqdm

        self.session_s = (config.end_ns - config.start_ns) / 1e9
        self.start_s = config.start_ns / 1e9
        self.bar = tqdm(
            total=round(self.session_s * runs),
            unit="sim-s",
            file=stream,
            dynamic_ncols=True,
            bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} sim-s [{elapsed}<{remaining}{postfix}]",
        )
        self.started = time.perf_counter()
        self.run_index: dict[int, int] = {}
        self.done = 0
        self.messages_before = 0
        self.last_messages = 0

    def update(self, seed: int | str, elapsed_ns: int, messages: int) -> None:
        index = self.run_index.setdefault(seed, len(self.run_index))
        if index and messages < self.last_messages:
            self.messages_before += self.last_messages
        self.last_messages = messages
        target = round(index * self.session_s + elapsed_ns / 1e9)
        if target > self.done:
            self.bar.update(target - self.done)
            self.done = target
        clock = self.start_s + elapsed_ns / 1e9
        total = self.messages_before + messages
        rate = total / max(time.perf_counter() - self.started, 1e-9)
        self.bar.set_description(
            f"seed {seed} {int(clock // 3600):02d}:{int(clock // 60 % 60):02d}", refresh=False
        )
        self.bar.set_postfix_str(f"{total:,} msgs, {rate:,.0f} msgs/s", refresh=False)

    def close(self) -> None:
        self.bar.close()
