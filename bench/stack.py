"""What the stack benchmarks share, and the browser tests with them: a stack on loopback started
from the Procfile as `make run` starts it (`start_stack`), a fresh PostgreSQL database when a
server answers (production's database; else the caller falls back to an SQLite file), how long
the recorders take to catch up, and the CPU time each part of the stack uses."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the project, for its protocol

# The protocol's one definition of the Redis key names, for the benchmarks that read the streams.
from exchange.protocol.keys import key

ROOT = Path(__file__).resolve().parents[1]

CLK_TCK = os.sysconf("SC_CLK_TCK")
DEFAULT_POSTGRES_URL = "postgres://postgres@127.0.0.1:5432/postgres"


def postgres_url() -> str:
    """The server to make benchmark databases on: `TEST_POSTGRES_URL`, as for the tests."""
    return os.environ.get("TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)


def postgres_answers(base_url: str) -> bool:
    try:
        import psycopg

        psycopg.connect(base_url, connect_timeout=2).close()
        return True
    except Exception:
        return False


def postgres_pids() -> list[int]:
    """Every PostgreSQL server process (the backends serving the stack are among them)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() in ("postgres", "postmaster"):
                    pids.append(int(entry.name))
            except OSError:
                pass
    return pids


def postgres_database(base_url: str) -> tuple[str, Callable[[], None]]:
    """A fresh database on the TEST_POSTGRES_URL server, and a function that drops it."""
    import psycopg

    name = f"fbbench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(base_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = base_url.rsplit("/", 1)[0] + f"/{name}"

    def drop():
        with psycopg.connect(base_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return url, drop


def caught_up_after(client, stream: str, limit_s: float = 30.0) -> float | None:
    """Seconds until the recorders' group has read and acknowledged the whole event stream (None:
    not within `limit_s`, or Redis cannot say)."""
    import redis

    start = time.monotonic()
    while time.monotonic() - start < limit_s:
        try:
            groups = client.xinfo_groups(stream)
        except redis.ResponseError:
            groups = []  # no group yet
        except redis.RedisError:
            return None
        if groups and not groups[0].get("lag") and not groups[0].get("pending"):
            return round(time.monotonic() - start, 2)
        time.sleep(0.1)
    return None


def cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(x) for x in (task / "children").read_text().split()]
        except OSError:
            pass
    return found


class CpuMeter:
    """CPU time used by groups of processes while it runs. The groups' processes are looked up
    again as it goes (a database backend may be replaced when its connection is): a process that
    starts counts from zero, one that ends with the last time it was seen."""

    def __init__(self, groups: dict[str, callable]) -> None:
        self.groups = groups
        self.start: dict[str, dict[int, float]] = {}
        self.last: dict[str, dict[int, float]] = {name: {} for name in groups}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample_every, args=(0.2,), daemon=True)

    def _sample(self) -> None:
        for name, pids in self.groups.items():
            seen = self.last[name]
            for pid in pids():
                used = cpu_seconds(pid)
                if used:
                    seen[pid] = used

    def _sample_every(self, seconds: float) -> None:
        while not self._stop.wait(seconds):
            self._sample()

    def __enter__(self) -> CpuMeter:
        self._sample()
        self.start = {name: dict(seen) for name, seen in self.last.items()}
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    def used(self) -> dict[str, float]:
        return {
            name: sum(used - self.start[name].get(pid, 0.0) for pid, used in seen.items())
            for name, seen in self.last.items()
        }


def stop_processes(processes, timeout: float = 15.0) -> None:
    """SIGTERM to every process, then a wait for each (SIGKILL for one still running after
    `timeout` seconds): the stack a benchmark started, stopped together."""
    for process in processes:
        process.terminate()
    for process in processes:
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()


def delete_prefix(client, prefix: str) -> None:
    """Deletes every Redis key a benchmark's stack made under its key prefix."""
    keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
    for start in range(0, len(keys), 500):
        client.unlink(*keys[start : start + 500])


# --- a stack on loopback ------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http_status(sock: socket.socket, path: str = "/healthz") -> bytes:
    """Sends a GET on a kept-alive connection; the status line of the answer."""
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    answer = b""
    while b"\r\n\r\n" not in answer:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("closed")
        answer += chunk
    return answer.split(b"\r\n", 1)[0]


def connections_held(port: int, pids: list[int]) -> list[int]:
    """Established connections to `port` held by each process (socket inodes in /proc): how a
    server spread its connections over its workers."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "01":  # ESTABLISHED
                inodes.add(fields[9])
    held = []
    for pid in pids:
        count = 0
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            count += target.startswith("socket:[") and target[8:-1] in inodes
        held.append(count)
    return held


def procfile_roles() -> dict[str, str]:
    """The Procfile's roles and commands: the processes `make run` starts (honcho's own parser)."""
    from honcho.environ import parse_procfile

    return dict(parse_procfile((ROOT / "Procfile").read_text()).processes)


@dataclass
class LoopbackStack:
    """Some of the Procfile's roles, started as `make run` starts them (each command through a
    shell for `$PORT`, which `exec` replaces by the role), on a database and a Redis key prefix of
    the caller's. The one way the benchmarks (bench-idle, bench-feed) and the browser tests run a
    stack; `start_stack` makes one."""

    url: str
    env: dict[str, str]
    prefix: str
    logs: Path
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    def manage(self, *args: str, timeout: float = 120) -> str:
        """`manage.py` with the stack's settings; its output (stdout). Fails with its stderr."""
        result = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if result.returncode:
            raise RuntimeError(f"manage.py {' '.join(args)}: {result.stderr[-3000:]}")
        return result.stdout

    def tail(self, role: str, size: int = 3000) -> str:
        return (self.logs / f"{role}.log").read_bytes()[-size:].decode(errors="replace")

    def check(self) -> None:
        """Raises (with the end of its log) when a role has exited."""
        for name, process in self.processes.items():
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited with {process.returncode}:\n{self.tail(name)}")

    def ready(self, symbols: Iterable[str]) -> bool:
        """The web role is ready (`/readyz`), an engine has taken on every enabled instrument (when
        an engine role runs) and the bridge has written each of `symbols`' snapshots (when it
        runs)."""
        import urllib.error
        import urllib.request

        self.check()
        if "web" in self.processes:
            try:
                with urllib.request.urlopen(self.url + "/readyz", timeout=2) as response:
                    engines = json.loads(response.read())["checks"]["engines"]
            except (urllib.error.URLError, OSError):
                return False
            if "engine" in self.processes and any(state != "ok" for state in engines.values()):
                return False  # an instrument is still starting
        if "bridge" in self.processes:
            import redis

            client = redis.Redis.from_url(self.env["REDIS_URL"])
            try:
                names = [key("ws", symbol, prefix=self.prefix) for symbol in symbols]
                return not names or client.exists(*names) == len(names)
            finally:
                client.close()
        return True

    def stop(self, *, delete_keys: bool = True) -> None:
        stop_processes(self.processes.values())
        if delete_keys:
            import redis

            client = redis.Redis.from_url(self.env["REDIS_URL"])
            try:
                delete_prefix(client, self.prefix)
            finally:
                client.close()


def start_stack(
    roles: Iterable[str],
    *,
    work: Path,
    redis_url: str,
    database_url: str | None = None,
    prefix: str | None = None,
    env: dict[str, str] | None = None,
    setup: Iterable[Sequence[str]] = (),
    ready_symbols: Iterable[str] = (),
    timeout: float = 120.0,
    stack_class: type[LoopbackStack] = LoopbackStack,
) -> LoopbackStack:
    """Migrates a database (an SQLite file in `work` unless `database_url`), runs the `setup`
    management commands (seeding), starts `roles` of the Procfile with their logs in `work`, and
    waits until the stack is ready (`LoopbackStack.ready`). What `make run` gives its processes:
    the settings of the `.env` it writes (DEBUG=1, a random SECRET_KEY), REDIS_URL and PORT; the
    database and the key prefix are this stack's own. On failure nothing is left running.
    `stack_class`: a subclass with the caller's helpers (the browser tests' REST calls)."""
    port = free_port()
    prefix = prefix or f"fbstack-{uuid.uuid4().hex[:10]}"
    stack = stack_class(
        url=f"http://127.0.0.1:{port}",
        env=dict(
            os.environ,
            DATABASE_URL=database_url or f"sqlite:///{work / 'db.sqlite3'}",
            REDIS_URL=redis_url,
            FLASHBOOK_REDIS_PREFIX=prefix,
            FLASHBOOK_ENV_FILE="",
            DEBUG="1",
            SECRET_KEY="loopback-" + uuid.uuid4().hex,
            PORT=str(port),
            # The FIX role's port and session store: the stack's own, not `make run`'s.
            FLASHBOOK_FIX_PORT=str(free_port()),
            FLASHBOOK_FIX_DIR=str(work / "fix"),
            # The Procfile says `python`: this interpreter's (as `make run` puts the venv first).
            PATH=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
        )
        | (env or {}),
        prefix=prefix,
        logs=work,
    )
    commands = procfile_roles()
    try:
        stack.manage("migrate", "--no-input", "-v0")
        for command in setup:
            stack.manage(*command)
        for name in roles:
            with open(work / f"{name}.log", "wb") as log:
                stack.processes[name] = subprocess.Popen(
                    ["sh", "-c", f"exec {commands[name]}"],
                    cwd=ROOT,
                    env=stack.env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
        symbols = list(ready_symbols)
        deadline = time.monotonic() + timeout
        while not stack.ready(symbols):
            if time.monotonic() > deadline:
                raise RuntimeError(f"the stack was not ready within {timeout:.0f} s (logs: {work})")
            time.sleep(0.3)
    except BaseException:
        stack.stop()
        raise
    return stack
