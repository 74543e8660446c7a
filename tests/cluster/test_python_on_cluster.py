"""The Python processes on a real Redis Cluster (`REDIS_URL=redis+cluster://...`): the recorder,
the funds batches it applies, `exchange_status` and `/readyz`, `run_engine --shard`'s registry
sync, the API throttle and the agents runner's own Redis use; and the parts that need one server
for now (the gateway's append, the bridge) refusing a cluster URL with one message.

One cluster for the module (three primaries with a replica each, ~6 s to start), each test under
a key prefix of its own. The symbols are the engine tests' three, whose slots fall to three
different primaries: every multi-key read and script the processes send spans them.
"""

from __future__ import annotations

import asyncio
import json
import random
import threading
import time
import uuid
from decimal import Decimal

import pytest
from asgiref.sync import async_to_sync
from django.core.management import call_command
from django.db import connection

from exchange import operations, redis_clients, selectors
from exchange.models import Account, Instrument
from exchange.orders import funds, gateway, journal
from exchange.orders.gateway import OrderRequest
from exchange.protocol import keys
from exchange.recorder import GROUP, Recorder
from tests.cluster.harness import LocalCluster, binaries_missing
from tests.recorder.support import (
    assert_conserved,
    assert_engine_agrees,
    dump,
    group_pending,
    make_account,
    make_instrument,
    manage,
    random_commands,
    reset_projection,
    run_concurrently,
    run_engine,
    write_journal,
)

SYMBOLS = ["ACME", "GLOBEX", "BTC"]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    missing = binaries_missing()
    if missing:
        pytest.skip(missing)
    started = LocalCluster(tmp_path_factory.mktemp("redis-cluster"))
    try:
        yield started.start()
    finally:
        started.stop()


@pytest.fixture
def r(cluster, settings):
    """The cluster as `REDIS_URL` in this process (and the subprocesses it starts), under a key
    prefix of this test's own; a cluster client for the test's own reads."""
    settings.REDIS_URL = cluster.url
    settings.FLASHBOOK_REDIS_PREFIX = f"pyc-{uuid.uuid4().hex[:12]}"
    client = cluster.client()
    yield client
    client.close()


def test_cluster_urls():
    target = redis_clients.parse_cluster("redis+cluster://u:p%40ss@10.0.0.1:6379,[::1]:7000/0")
    assert target.seeds == (("10.0.0.1", 6379), ("::1", 7000))
    assert (target.username, target.password) == ("u", "p@ss")
    assert redis_clients.parse_cluster("redis://127.0.0.1:6379/0") is None
    for bad in (
        "redis+cluster://a:1/2",  # a database other than 0
        "redis+cluster://a:1?x=1",
        "redis+cluster://a:1,b",
        "redis+cluster://a:0",
    ):
        with pytest.raises(redis_clients.ImproperlyConfigured):
            redis_clients.parse_cluster(bad)
    assert (
        redis_clients.redacted("redis+cluster://u:secret@a:1,b:2") == "redis+cluster://***@a:1,b:2"
    )
    # A plain URL makes a plain client, exactly as before.
    plain = redis_clients.client("redis://127.0.0.1:6379/0", socket_timeout=3)
    assert type(plain).__name__ == "Redis"
    assert plain.connection_pool.connection_kwargs["socket_timeout"] == 3


def test_the_symbols_keys_are_on_three_primaries(cluster, r):
    primaries = {cluster.primary_of(keys.key("evt", s)).port for s in SYMBOLS}
    assert len(primaries) == 3
    assert type(journal.client()).__name__ == "RedisCluster"


@pytest.mark.django_db(transaction=True)
def test_two_recorders_on_a_cluster_make_the_database_one_recorder_makes(file_db, r):
    """The scale-out recorders' test on the cluster: the real engine drains three journals, two
    recorders share the group (their reads one per slot), the funds states follow every batch
    (the batch's accounts: one script call per slot), and `exchange_status` and `/readyz` read
    it all back. Then one recorder alone records the same streams into the same database."""
    rng = random.Random(11)
    for symbol in SYMBOLS:
        make_instrument(symbol, tick="0.01", lot="0.5")  # the registry sync on the cluster
    accounts = [make_account(f"trader{i:02d}").pk for i in range(12)]
    assert len(redis_clients.by_slot(keys.funds_key(pk) for pk in accounts)) > 1
    for pk in accounts:  # funds states to follow: every batch's cash goes to them
        assert funds.bootstrap(pk)
    for symbol in SYMBOLS:
        write_journal(r, symbol, random_commands(rng, 1500, accounts))
    run_engine(file_db, SYMBOLS, batch_size=20)
    entries = sum(r.xlen(keys.key("evt", s)) for s in SYMBOLS)

    recorders = [Recorder(SYMBOLS, consumer=name, batch=3) for name in ("left", "right")]
    run_concurrently(recorders, 180)
    left, right = (rec.stats for rec in recorders)
    assert left.entries > 0 and right.entries > 0, (left, right)
    assert left.entries + right.entries == entries
    assert group_pending(r, SYMBOLS) == 0
    assert_engine_agrees(r, SYMBOLS)
    assert_conserved(SYMBOLS)
    for account in Account.objects.filter(pk__in=accounts):
        assert funds.read(account.pk).cash == account.cash, account.name

    statuses = operations.exchange_status(SYMBOLS)
    for status in statuses:
        assert status.engine_seen and status.engine_lag == 0, status
        assert status.recorder_lag == 0 and status.recorder_pending == 0, status
        assert status.recorded_seq == status.events_last_seq > 0, status
        assert status.recorder_consumers == 0, status  # both left the group as they stopped
    # The recorder's health check: a consumer's idle time, read stream by stream.
    r.xgroup_createconsumer(keys.key("evt", "GLOBEX"), GROUP, "probe")
    assert 0 <= operations.consumer_idle_ms("probe", SYMBOLS) < 10_000
    # The site's marks: the books of three slots in one call of the selectors.
    mids = selectors._book_mids(Instrument.objects.filter(symbol__in=SYMBOLS))
    for symbol in SYMBOLS:
        book = json.loads(r.get(keys.key("book", symbol)))
        if book["bids"] and book["asks"]:
            assert mids[symbol] == Decimal("0.01") * (book["bids"][0][0] + book["asks"][0][0]) / 2
    assert mids, "no book had both sides"
    ready = operations.readiness()
    assert ready["ready"], ready
    assert ready["checks"]["engines"] == dict.fromkeys(SYMBOLS, "ok")

    shared = dump()
    reset_projection(r, SYMBOLS)
    alone = Recorder(SYMBOLS, consumer="alone", batch=7).run(until_idle=True)
    assert alone.entries == entries
    assert dump() == shared


@pytest.mark.django_db(transaction=True)
def test_run_engine_shard_syncs_the_registry_and_rules_on_a_cluster(file_db, r):
    """`run_engine --shard 1/1` with no symbol list: the registry from the database (its two
    untagged keys on their own slots), the rules through the gateway's command append, then the
    worker finds the symbols in the registry and drains their journals."""
    make_instrument("ACME", price_band_pct=10)  # a rule to send
    make_instrument("GLOBEX")
    r.delete(keys.instruments_key(), keys.instruments_version_key())  # a Redis that lost them
    rng = random.Random(3)
    accounts = [make_account(f"t{i}").pk for i in range(4)]
    for symbol in ("ACME", "GLOBEX"):
        commands = [c for c in random_commands(rng, 300, accounts) if c.get("t") != "band"]
        write_journal(r, symbol, commands)
    result = manage(file_db, "run_engine", "--shard", "1/1", "--exit-when-drained")
    assert "serving ACME, GLOBEX" in result.stderr
    assert r.smembers(keys.instruments_key()) == {b"ACME", b"GLOBEX"}
    assert int(r.get(keys.instruments_version_key())) >= 1
    assert r.exists(keys.key("status", "ACME"), keys.key("status", "GLOBEX")) == 2
    bands = [f for _, f in r.xrange(keys.key("cmd", "ACME")) if f.get(b"t") == b"band"]
    assert bands, "the band was not journaled"
    assert r.xlen(keys.key("evt", "GLOBEX")) > 0
    # The engines' health check, a process of its own on the cluster.
    report = manage(file_db, "exchange_status", "--json", "--check")
    rows = [json.loads(line) for line in report.stdout.splitlines() if line.strip()]
    assert {row["symbol"]: row["engine_lag"] for row in rows} == {"ACME": 0, "GLOBEX": 0}


@pytest.mark.django_db(transaction=True)
def test_the_recorder_carries_on_after_a_primary_is_killed(
    file_db, cluster_factory, settings, caplog
):
    """SIGKILL of the primary of one symbol's slot while a recorder records: the client
    retries nothing, the failover reaches the recorder as errors it waits out, and it finishes on
    the promoted replica. Entries it had acknowledged on the dead primary that the replica had
    not heard of are delivered again and skipped by the cursor; the database is the engine's."""
    cluster = cluster_factory()
    settings.REDIS_URL = cluster.url
    settings.FLASHBOOK_REDIS_PREFIX = f"pyc-{uuid.uuid4().hex[:12]}"
    r = cluster.client()
    rng = random.Random(5)
    for symbol in SYMBOLS:
        make_instrument(symbol, tick="0.01", lot="0.5")
    accounts = [make_account(f"trader{i:02d}").pk for i in range(8)]
    for symbol in SYMBOLS:
        write_journal(r, symbol, random_commands(rng, 2500, accounts))
    run_engine(file_db, SYMBOLS, batch_size=10)
    for node in cluster.living():  # every event on its replica: the kill loses none of them
        with node.client() as client:
            if client.info("replication")["role"] == "master":
                assert client.execute_command("WAIT", 1, 5000) == 1
    entries = sum(r.xlen(keys.key("evt", s)) for s in SYMBOLS)
    slot = r.keyslot(keys.key("evt", "ACME"))
    primary = cluster.primary_of_slot(slot)

    recorder = Recorder(SYMBOLS, consumer="survivor", batch=2)
    errors = []

    def run():
        try:
            recorder.run(until_idle=True)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    deadline = time.monotonic() + 60
    while recorder.stats.entries < entries // 4:
        assert thread.is_alive() and time.monotonic() < deadline, errors
        time.sleep(0.01)
    cluster.kill(primary)
    recorded_before = recorder.stats.entries
    assert recorded_before < entries, "killed after the recording: nothing was tested"
    cluster.wait_failover(slot)
    thread.join(120)
    assert not thread.is_alive() and not errors, errors
    assert "recorder retry" in caplog.text, "the recorder never met the failover"
    r.close()
    r = cluster.client()  # the old one's pool still names the dead node first
    assert group_pending(r, SYMBOLS) == 0
    assert_engine_agrees(r, SYMBOLS)
    assert_conserved(SYMBOLS)
    for status in operations.exchange_status(SYMBOLS):
        assert status.recorded_seq == status.events_last_seq, status
    r.close()


def test_the_throttle_counts_users_of_several_slots_in_one_batch(r, settings):
    """Concurrent order writes of six users, counted in one coalesced batch: one script call per
    slot on the cluster, each user's count in order, the limit held per user."""
    from exchange.api.throttling import aorder_rate

    settings.FLASHBOOK_ORDER_RATE = "3/min"
    users = list(range(101, 107))
    window = int(time.time() // 60)
    assert len(redis_clients.by_slot(keys.throttle_key(u, window) for u in users)) > 1

    async def burst():
        try:
            return await asyncio.gather(*(aorder_rate(u) for u in users for _ in range(4)))
        finally:
            await journal.aclose_loop()

    rates = async_to_sync(burst)()
    if int(time.time() // 60) != window:
        pytest.skip("the minute turned during the burst")
    by_user: dict[int, list] = {}
    for (user, _), rate in zip([(u, i) for u in users for i in range(4)], rates, strict=True):
        by_user.setdefault(user, []).append(rate)
    for user, answers in by_user.items():
        assert sorted(a.remaining for a in answers) == [0, 0, 1, 2], user
        assert sum(a.wait is not None for a in answers) == 1, user
        assert int(r.get(keys.throttle_key(user, window))) == 4
        assert 0 < r.ttl(keys.throttle_key(user, window)) <= 61


@pytest.mark.django_db(transaction=True)
def test_the_agents_runner_reads_and_hears_the_cluster(r, settings):
    """The runner's own Redis use: its event reads over symbols of three slots (one per slot),
    the simulation's notices (pub/sub through the cluster client) and the lock and state the
    sim services write."""
    from agents import services as agent_services
    from agents.runner.runner import Runner

    for symbol in SYMBOLS:
        r.xadd(keys.key("evt", symbol), {"first": 1, "last": 1, "jid": "0-1", "e": "x"})

    async def scenario():
        runner = Runner()
        runner.redis = redis_clients.aclient(decode_responses=True)
        runner.cluster = True
        try:
            streams = {keys.key("evt", s): "0-0" for s in SYMBOLS}
            read = await runner._read_events(streams)
            assert sorted(name for name, _ in read) == sorted(streams)
            # Nothing new: each slot's read blocks as the one read would, and comes back empty.
            began = time.monotonic()
            tail = {name: entries[-1][0] for name, entries in read}
            assert await runner._read_events(tail) == []
            assert time.monotonic() - began >= 0.2

            watcher = asyncio.create_task(runner._watch_sim())
            await asyncio.sleep(0.5)  # subscribed
            runner.configs_stale.clear()
            await asyncio.get_running_loop().run_in_executor(None, pause)
            deadline = time.monotonic() + 5
            while not runner.configs_stale.is_set():  # the notice, not the 5 s poll
                assert time.monotonic() < deadline, "no notice came"
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.1)
            assert runner.paused
            watcher.cancel()
        finally:
            await runner.redis.aclose()

    def pause():
        agent_services.sim_pause()
        connection.close()

    async_to_sync(scenario)()
    assert r.hget(f"{settings.FLASHBOOK_REDIS_PREFIX}:sim:state", "state") == b"paused"


@pytest.mark.django_db(transaction=True)
def test_what_needs_one_server_says_so(r):
    """The gateway's append script and the bridge refuse a cluster at once, with the reason and
    where the plan is, and write nothing."""
    from exchange.live.bridge import Bridge

    make_instrument("ACME")
    account = make_account("alice")
    request = OrderRequest(symbol="ACME", side="buy", quantity=1, price=100)
    with pytest.raises(redis_clients.ClusterUnsupported, match=r"docs/deploy\.md"):
        gateway.blocking(gateway.order_submit)(account=account, request=request)
    assert r.xlen(keys.key("cmd", "ACME")) == 0
    with pytest.raises(redis_clients.ClusterUnsupported, match="The bridge"):
        async_to_sync(Bridge().run)()
    with pytest.raises(redis_clients.ClusterUnsupported, match="FIX"):
        call_command("run_fix")
