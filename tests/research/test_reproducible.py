"""Manifests and ``simulate verify``: a run re-made byte for byte from its manifest; a tampered
file, or a manifest that no longer matches its files, named."""

from __future__ import annotations

import json

import pytest
from django.core.management import CommandError, call_command

from agents.research import config_from_mapping, preset, simulate, simulate_seeds
from agents.research.config import parse_time_of_day
from agents.research.manifest import file_digest, read_manifest
from agents.research.outputs import parse_output_choice
from agents.research.presets import preset_data
from agents.research.verify import first_difference, verify_run


def short_config():
    return preset("small").with_session(end_ns=parse_time_of_day("09:33"))


@pytest.fixture
def run_dir(tmp_path):
    out = tmp_path / "run"
    simulate(short_config(), 3, out)
    return out


def test_manifest_lists_every_file_with_its_digest(run_dir):
    manifest = read_manifest(run_dir)
    written = sorted(
        str(p.relative_to(run_dir))
        for p in run_dir.rglob("*")
        if p.is_file() and p.name != "manifest.json"
    )
    assert sorted(manifest["files"]) == written
    for name, digest in manifest["files"].items():
        assert file_digest(run_dir / name) == digest
    assert manifest["seeds"] == [3] and not manifest["pooled"]
    assert manifest["config"] == short_config().to_dict()
    code = manifest["code"]
    assert len(code["git_commit"]) == 40  # the tests run from a git checkout
    assert code["engine_crate"] and code["package"] and code["libraries"]["pyarrow"]


def test_verify_passes_on_an_untouched_run(run_dir, capsys):
    result = verify_run(run_dir)
    assert result.ok, result.problems
    assert result.checked == len(read_manifest(run_dir)["files"])
    call_command("simulate", "verify", str(run_dir), "--no-progress")
    assert "re-made byte for byte" in capsys.readouterr().out


def test_one_tampered_byte_is_named(run_dir, capsys):
    manifest = read_manifest(run_dir)
    name = next(n for n in manifest["files"] if n.endswith("_message_5.csv"))
    data = bytearray((run_dir / name).read_bytes())
    data[1000] ^= 0x01
    (run_dir / name).write_bytes(bytes(data))
    result = verify_run(run_dir)
    assert not result.ok
    assert result.problems == [
        f"{name}: differs from its digest in the manifest (first different byte at offset 1000)"
    ]
    with pytest.raises(CommandError, match="verify failed"):
        call_command("simulate", "verify", str(run_dir), "--no-progress")
    assert f"DIFFERS  {name}: " in capsys.readouterr().err


def test_a_missing_file_is_named(run_dir):
    (run_dir / "plots" / "price_path.png").unlink()
    result = verify_run(run_dir)
    assert result.problems == ["plots/price_path.png: missing from " + str(run_dir)]


def test_the_manifests_own_config_is_what_is_rerun(tmp_path):
    # A configuration no preset has (another tick, fewer agents, no halt): verify needs nothing
    # but the manifest to make it again.
    data = preset_data("small")
    data.update(tick_size="0.05", reference_price="40.00", end="09:32", halts=[], shocks=[])
    data["agents"] = data["agents"][:2]
    config = config_from_mapping(data)
    out = tmp_path / "custom"
    simulate(config, 5, out, outputs=parse_output_choice("messages,orderbook,trades", "csv"))
    assert verify_run(out).ok

    # The files are untouched, but the manifest now says another config: the re-run follows
    # the manifest, so it no longer makes these files.
    path = out / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["config"]["agents"][1]["count"] += 1
    path.write_text(json.dumps(manifest))
    problems = verify_run(out).problems
    assert any("_message_5.csv: the re-run's file differs" in p for p in problems), problems


def test_pooled_runs_are_verified_whole(tmp_path):
    config = preset("small").with_session(end_ns=parse_time_of_day("09:32"))
    out = tmp_path / "pooled"
    simulate_seeds(config, [1, 2], out, outputs=parse_output_choice("trades,bars", "parquet"))
    manifest = read_manifest(out)
    assert manifest["seeds"] == [1, 2] and manifest["pooled"]
    assert {"facts.json", "seed-1/trades.parquet", "seed-2/bars.csv"} <= set(manifest["files"])
    assert verify_run(out).ok
    assert verify_run(out / "seed-2").ok  # a day of it alone
    (out / "seed-1" / "bars.csv").write_text("tampered\n")
    assert verify_run(out).problems[0].startswith("seed-1/bars.csv: differs")


def test_first_difference(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_bytes(b"abcdef")
    b.write_bytes(b"abcdef")
    assert first_difference(a, b) is None
    b.write_bytes(b"abcXef")
    assert first_difference(a, b) == 3
    b.write_bytes(b"abc")
    assert first_difference(a, b, chunk=2) == 3


def test_verify_without_a_manifest(tmp_path):
    with pytest.raises(CommandError, match="no manifest"):
        call_command("simulate", "verify", str(tmp_path), "--no-progress")
    with pytest.raises(CommandError, match="verify DIR"):
        call_command("simulate", "verify", "--no-progress")
