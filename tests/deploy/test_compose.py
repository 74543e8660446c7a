"""docker-compose.yml and the Dockerfile: what a deployment relies on. `docker compose config`
validates the file against Compose's own schema where a Compose client is installed
(`make test` runs it too: scripts/check_compose.sh)."""

import os
import re
import shutil
import subprocess

import pytest

from .compose import COMPOSE_FILE, REQUIRED, ROOT, MissingVariable, load, service_environment

APP_SERVICES = {
    "migrate", "engine-a", "engine-b", "recorder", "bridge", "agents", "research", "web", "fix",
}  # fmt: skip
LONG_RUNNING = APP_SERVICES - {"migrate"}


def _command(service: dict) -> list[str]:
    command = service.get("command")
    return command if isinstance(command, list) else []


def test_the_file_refuses_to_render_without_the_secrets():
    for name in REQUIRED:
        with pytest.raises(MissingVariable, match=name):
            load({k: v for k, v in REQUIRED.items() if k != name})


def test_every_role_runs_the_one_image_with_the_production_environment():
    services = load()["services"]
    assert APP_SERVICES | {"redis", "postgres", "proxy"} == set(services)
    images = {services[name]["image"] for name in APP_SERVICES}
    assert images == {"flashbook:latest"}
    for name in APP_SERVICES:
        environment = service_environment(services[name])
        assert environment["DEBUG"] == "0", name
        assert environment["SECRET_KEY"] == REQUIRED["SECRET_KEY"], name
        assert environment["DATABASE_URL"].startswith("postgres://flashbook:test-password@postgres")
        assert environment["REDIS_URL"] == "redis://redis:6379/0"
        assert environment["LOG_FORMAT"] == "json"
    for name in LONG_RUNNING:
        assert services[name]["restart"] == "unless-stopped", name
        needs = services[name]["depends_on"]
        assert needs["migrate"]["condition"] == "service_completed_successfully", name
        assert needs["redis"]["condition"] == "service_healthy", name


def test_engine_shards_split_the_instruments_and_are_health_checked_on_their_shard():
    services = load()["services"]
    shards = {}
    for name, service in services.items():
        command = _command(service)
        if "run_engine" in command:
            shard = command[command.index("--shard") + 1]
            shards[name] = shard
            check = service["healthcheck"]["test"]
            assert "--check" in check and check[check.index("--shard") + 1] == shard
            assert service["stop_grace_period"] == "30s"  # time for the final snapshot
    # Shards 1 and 2 of 2: every instrument, listed now or later, has exactly one engine.
    assert shards == {"engine-a": "1/2", "engine-b": "2/2"}


def test_redis_keeps_the_journals_and_never_evicts():
    services = load()["services"]
    command = services["redis"]["command"]
    assert command[command.index("--appendonly") + 1] == "yes"
    assert command[command.index("--maxmemory-policy") + 1] == "noeviction"
    assert "redis-data:/data" in services["redis"]["volumes"]
    assert "postgres-data:/var/lib/postgresql/data" in services["postgres"]["volumes"]
    assert {"redis-data", "postgres-data", "caddy-data", "caddy-config"} <= set(load()["volumes"])


def test_scaled_roles_and_health_checks():
    services = load({**REQUIRED, "RECORDER_REPLICAS": "3", "WEB_REPLICAS": "2"})["services"]
    assert services["recorder"]["deploy"]["replicas"] == "3"
    assert services["web"]["deploy"]["replicas"] == "2"
    assert "run_recorder" in _command(services["recorder"])
    assert "--check-recorder" in services["recorder"]["healthcheck"]["test"][1]
    assert "/readyz" in services["web"]["healthcheck"]["test"][-1]
    for name in ("redis", "postgres"):
        assert services[name]["healthcheck"]["test"]
    # Only the proxy (https) and the FIX acceptor (FIX's own TCP) are reachable from outside;
    # web speaks to the proxy on the private network.
    assert sorted(name for name, s in services.items() if s.get("ports")) == ["fix", "proxy"]
    assert services["web"]["expose"] == ["8000"]


def test_one_fix_acceptor_keeps_its_sessions_in_a_volume_and_listens_on_every_address():
    services = load()["services"]
    fix = services["fix"]
    assert _command(fix) == ["python", "manage.py", "run_fix"]
    assert "deploy" not in fix  # one: a session's sequence numbers live in its store
    environment = service_environment(fix)
    assert environment["FLASHBOOK_FIX_HOST"] == "0.0.0.0"
    assert "fix-data:" + environment["FLASHBOOK_FIX_DIR"] in fix["volumes"]
    assert fix["ports"] == ["9878:9878"] and environment["FLASHBOOK_FIX_PORT"] == "9878"
    assert "9878" in fix["healthcheck"]["test"][-1]
    assert "fix-data" in load()["volumes"]


def test_the_migrate_step_seeds_unless_told_not_to():
    services = load()["services"]
    script = _command(services["migrate"])[-1]
    assert "migrate --no-input" in script and "seed_demo" in script
    assert '"${FLASHBOOK_SEED_DEMO}"' in script  # `$$` became a shell variable, not interpolated
    assert services["migrate"]["restart"] == "no"


def test_dockerfile_builds_engine_assets_and_runtime_in_stages():
    text = (ROOT / "Dockerfile").read_text()
    stages = re.findall(r"^FROM \S+ AS (\w+)", text, flags=re.MULTILINE)
    assert stages == ["rust", "engine", "assets", "runtime"]
    assert "maturin build --release" in text
    assert "scripts/web_assets.sh" in text
    assert "collectstatic --no-input" in text
    assert "HEALTHCHECK" in text and "/healthz" in text
    assert re.search(r"^USER flashbook$", text, flags=re.MULTILINE)
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".env", ".venv", "target", "node_modules", "**/*.so"} <= set(ignored)


def _compose_client() -> list[str] | None:
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=30)
        if probe.returncode == 0:
            return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return None


@pytest.mark.parametrize("complete", [True, False])
def test_docker_compose_config_validates_the_file(tmp_path, complete):
    client = _compose_client()
    if client is None:
        pytest.skip("no Docker Compose client installed (make test installs one with docker)")
    env_file = tmp_path / "deploy.env"
    variables = REQUIRED if complete else {k: v for k, v in REQUIRED.items() if k != "SECRET_KEY"}
    env_file.write_text("".join(f"{k}={v}\n" for k, v in variables.items()))
    result = subprocess.run(
        [*client, "--env-file", str(env_file), "-f", str(COMPOSE_FILE), "config", "-q"],
        cwd=ROOT,
        env={"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp")},
        capture_output=True,
        text=True,
        timeout=120,
    )
    if complete:
        assert result.returncode == 0, result.stderr
    else:
        assert result.returncode != 0 and "SECRET_KEY" in result.stderr


def test_the_research_worker_and_the_web_share_the_runs_volume():
    """The worker writes a run's files, the web serves them: one directory, one volume."""
    services = load()["services"]
    research, web = services["research"], services["web"]
    assert _command(research) == ["python", "manage.py", "run_research"]
    for service in (research, web):
        directory = service_environment(service)["RESEARCH_RUNS_DIR"]
        assert "research-runs:" + directory in service["volumes"]
    assert "research-runs" in load()["volumes"]
