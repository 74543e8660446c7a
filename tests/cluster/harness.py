"""A Redis Cluster of real `redis-server` processes on loopback ports, started and torn down by the
tests themselves: no Docker, no shared state with any other Redis.

`LocalCluster(directory).start()` starts `primaries * (1 + replicas)` nodes (three primaries with a
replica each by default, the smallest cluster that survives losing a primary), each with its
port, its cluster bus port and its files (`nodes.conf`, the append-only file, its log) in a
directory of its own; joins them with `redis-cli --cluster create`; and waits until every node
says `cluster_state:ok`, knows every other node, and every replica is in sync with its primary.
`stop()` kills every node it started and removes the directory; the `cluster_factory` fixture
(`conftest.py`) calls it whatever the test did.

`url` is how the project names a cluster (`docs/deploy.md`): `redis+cluster://` and the nodes as
seeds. `appendfsync` is `everysec` (Redis's default) or `always`: what a primary killed with
SIGKILL can lose (`kill`) differs between the two.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import redis
from redis.cluster import ClusterNode, RedisCluster

HOST = "127.0.0.1"


def binaries_missing() -> str | None:
    """Why a cluster cannot be started here (None if it can): `scripts/ensure_redis.sh` installs
    Debian's `redis-server`, which brings `redis-cli`, on a machine without them."""
    for binary in ("redis-server", "redis-cli"):
        if shutil.which(binary) is None:
            return f"{binary} is not installed (scripts/ensure_redis.sh installs it)"
    version = subprocess.run(
        ["redis-server", "--version"], capture_output=True, text=True, check=False
    ).stdout
    # `cluster-port` (the bus port given rather than port + 10000) is Redis 7's.
    major = version.split("v=", 1)[-1].split(".", 1)[0]
    if not major.isdigit() or int(major) < 7:
        return f"Redis >= 7 is needed for a local cluster; found: {version.strip()}"
    return None


def free_ports(count: int) -> list[int]:
    """`count` distinct free loopback ports, all held open until all are found (so they differ)."""
    with ExitStack() as stack:
        ports = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket())
            sock.bind((HOST, 0))
            ports.append(sock.getsockname()[1])
        return ports


@dataclass
class Node:
    port: int
    bus_port: int
    directory: Path
    process: subprocess.Popen | None = None
    killed: bool = False

    @property
    def address(self) -> str:
        return f"{HOST}:{self.port}"

    def client(self, **options) -> redis.Redis:
        return redis.Redis(host=HOST, port=self.port, socket_timeout=5, **options)

    def info(self, section: str) -> dict:
        with self.client() as client:
            return client.info(section)


@dataclass
class LocalCluster:
    directory: Path
    primaries: int = 3
    replicas: int = 1
    appendfsync: str = "everysec"
    # How long a primary may be silent before the others fail it over to its replica: short, so
    # a test sees a failover in a couple of seconds.
    node_timeout_ms: int = 1000
    nodes: list[Node] = field(default_factory=list)

    # --- starting ---------------------------------------------------------------------------

    def start(self, timeout: float = 30.0) -> LocalCluster:
        if self.appendfsync not in ("everysec", "always"):
            raise ValueError(f"appendfsync {self.appendfsync!r}: everysec or always")
        count = self.primaries * (1 + self.replicas)
        self.directory.mkdir(parents=True, exist_ok=True)
        ports = free_ports(2 * count)
        try:
            for index in range(count):
                port, bus_port = ports[2 * index], ports[2 * index + 1]
                node = Node(port, bus_port, self.directory / f"node-{index}")
                self.nodes.append(node)
                self._start_node(node)
            deadline = time.monotonic() + timeout
            for node in self.nodes:
                self._wait(lambda n=node: self._pings(n), deadline, f"node {node.port} to answer")
            self._create()
            self._wait(self._settled, deadline, "the cluster to settle")
        except BaseException:
            self.stop()
            raise
        return self

    def _start_node(self, node: Node) -> None:
        node.directory.mkdir()
        command = [
            "redis-server",
            "--bind", HOST,
            "--port", str(node.port),
            "--cluster-port", str(node.bus_port),
            "--cluster-enabled", "yes",
            "--cluster-config-file", "nodes.conf",
            "--cluster-node-timeout", str(self.node_timeout_ms),
            "--dir", str(node.directory),
            "--appendonly", "yes",
            "--appendfsync", self.appendfsync,
            "--save", "",
            "--daemonize", "no",
            "--logfile", "redis.log",
        ]  # fmt: skip
        # A session of its own: a Ctrl-C at the terminal reaches pytest, which then stops the
        # nodes, rather than every node at once.
        node.process = subprocess.Popen(
            command,
            cwd=node.directory,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )

    def _create(self) -> None:
        result = subprocess.run(
            [
                "redis-cli", "--cluster", "create",
                *(node.address for node in self.nodes),
                "--cluster-replicas", str(self.replicas),
                "--cluster-yes",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )  # fmt: skip
        if result.returncode != 0:
            raise RuntimeError(
                f"redis-cli --cluster create failed ({result.returncode}):\n"
                f"{result.stdout[-2000:]}\n{result.stderr[-2000:]}\n{self.logs()}"
            )

    @staticmethod
    def _pings(node: Node) -> bool:
        try:
            with node.client(socket_connect_timeout=1) as client:
                return bool(client.ping())
        except redis.RedisError:
            return False

    def _settled(self) -> bool:
        """Every node up, `cluster_state:ok`, aware of every node; every replica in sync."""
        living = self.living()
        try:
            for node in living:
                with node.client() as client:
                    info = client.cluster("info")
                    if info.get("cluster_state") != "ok":
                        return False
                    if int(info.get("cluster_known_nodes", 0)) != len(self.nodes):
                        return False
                replication = node.info("replication")
                if replication["role"] == "slave" and (
                    replication.get("master_link_status") != "up"
                    or replication.get("master_sync_in_progress")
                ):
                    return False
            return self._all_slots_served()
        except (redis.RedisError, KeyError, ValueError):
            return False

    def _all_slots_served(self) -> bool:
        served = 0
        for start, end, *_ in self._slots():
            served += end - start + 1
        return served == 16384

    @staticmethod
    def _wait(condition, deadline: float, what: str, interval: float = 0.05) -> None:
        while not condition():
            if time.monotonic() > deadline:
                raise TimeoutError(f"timed out waiting for {what}")
            time.sleep(interval)

    # --- naming and reaching it ------------------------------------------------------------

    @property
    def url(self) -> str:
        """The project's name for this cluster: `redis+cluster://` and every node as a seed."""
        return "redis+cluster://" + ",".join(node.address for node in self.nodes)

    def client(self) -> RedisCluster:
        """A cluster-aware redis-py client (the tests' own: the Python processes do not speak
        cluster yet)."""
        seeds = [ClusterNode(HOST, node.port) for node in self.living()]
        return RedisCluster(startup_nodes=seeds, socket_timeout=10)

    def living(self) -> list[Node]:
        return [node for node in self.nodes if not node.killed]

    def _slots(self) -> list:
        for node in self.living():
            try:
                with node.client() as client:
                    return client.execute_command("CLUSTER SLOTS")
            except redis.RedisError:
                continue
        raise RuntimeError("no node of the cluster answers")

    def primary_of_slot(self, slot: int) -> Node:
        """The node that serves `slot` as its primary, as the cluster sees it now."""
        for start, end, primary, *_ in self._slots():
            if start <= slot <= end:
                port = int(primary[1])
                return next(node for node in self.nodes if node.port == port)
        raise LookupError(f"no node serves slot {slot}")

    def primary_of(self, key: str) -> Node:
        with self.nodes[0].client() as client:
            slot = int(client.cluster("keyslot", key))
        return self.primary_of_slot(slot)

    def replica_of(self, primary: Node) -> Node:
        with primary.client() as client:
            node_id = client.cluster("myid")
            lines = client.execute_command("CLUSTER REPLICAS", node_id)
        for line in lines:
            address = (line.decode() if isinstance(line, bytes) else line).split()[1]
            port = int(address.split("@")[0].rsplit(":", 1)[1])
            return next(node for node in self.nodes if node.port == port)
        raise LookupError(f"node {primary.port} has no replica")

    # --- failing ----------------------------------------------------------------------------

    def kill(self, node: Node) -> None:
        """SIGKILL: the node writes nothing more, not even what `everysec` had not synced."""
        if node.process is not None and node.process.poll() is None:
            node.process.send_signal(signal.SIGKILL)
            node.process.wait(10)
        node.killed = True

    def wait_failover(self, slot: int, timeout: float = 30.0) -> Node:
        """Waits until a living node serves `slot` as primary and every living node says
        `cluster_state:ok`; returns the new primary."""
        deadline = time.monotonic() + timeout

        def failed_over() -> bool:
            try:
                primary = self.primary_of_slot(slot)
                if primary.killed:
                    return False
                for node in self.living():
                    with node.client() as client:
                        if client.cluster("info").get("cluster_state") != "ok":
                            return False
                return True
            except (redis.RedisError, LookupError, RuntimeError):
                return False

        self._wait(failed_over, deadline, f"a replica to take over slot {slot}", interval=0.1)
        return self.primary_of_slot(slot)

    # --- stopping ---------------------------------------------------------------------------

    def logs(self, lines: int = 20) -> str:
        """The end of every node's log, for failure messages."""
        parts = []
        for node in self.nodes:
            log = node.directory / "redis.log"
            if log.exists():
                tail = log.read_text(errors="replace").splitlines()[-lines:]
                parts.append(f"--- node {node.port} ---\n" + "\n".join(tail))
        return "\n".join(parts)

    def stop(self) -> None:
        """Kills every node this cluster started and removes its files. Idempotent."""
        for node in self.nodes:
            process = node.process
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGKILL)
                try:
                    process.wait(10)
                except subprocess.TimeoutExpired:
                    pass
        if self.directory.exists():
            shutil.rmtree(self.directory, ignore_errors=True)


if __name__ == "__main__":
    # `python -m tests.cluster.harness [everysec|always]`: a cluster to try things against by hand;
    # prints its URL, and stops it (removing its files) on Ctrl-C.
    import sys
    import tempfile

    fsync = sys.argv[1] if len(sys.argv) > 1 else "everysec"
    cluster = LocalCluster(Path(tempfile.mkdtemp(prefix="flashbook-cluster-")), appendfsync=fsync)
    cluster.start()
    try:
        print(f"REDIS_URL={cluster.url}", flush=True)
        signal.pause()
    except KeyboardInterrupt:
        pass
    finally:
        cluster.stop()
