"""Several web processes behind one channel layer: the one bridge's frames reach browsers on every
web process (two uvicorn servers, the real engine and bridge, WebSocket clients on each)."""

import asyncio
import json
import signal
import socket
import subprocess
import sys
import time

import pytest

from bench.stack import free_port
from exchange.live.bridge import snapshot_key
from exchange.orders import journal
from tests.recorder.support import ROOT, make_instrument, start_manage, subprocess_env

pytestmark = pytest.mark.django_db(transaction=True)


def listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        return True
    except OSError:
        return False


async def first_trade_frames(ports: list[int], send_orders) -> list[dict]:
    """Connects one market socket to each server, then sends the orders; returns the first
    trades frame each socket receives."""
    import websockets

    async def client(port: int, connected: asyncio.Event, go: asyncio.Event) -> dict:
        url = f"ws://127.0.0.1:{port}/ws/market/ACME/"
        async with websockets.connect(url, origin=f"http://127.0.0.1:{port}") as socket_:
            assert json.loads(await socket_.recv())["type"] == "snapshot"
            connected.set()
            await go.wait()
            while True:
                frame = json.loads(await socket_.recv())
                if frame["type"] == "trades":
                    return frame

    events = [asyncio.Event() for _ in ports]
    go = asyncio.Event()
    tasks = [asyncio.create_task(client(p, e, go)) for p, e in zip(ports, events, strict=True)]
    await asyncio.wait_for(asyncio.gather(*(e.wait() for e in events)), 30)
    send_orders()
    go.set()
    return await asyncio.wait_for(asyncio.gather(*tasks), 60)


@pytest.mark.slow
def test_bridge_frames_reach_clients_of_every_web_process(file_db, r, tmp_path):
    make_instrument("ACME")
    ports = [free_port(), free_port()]
    processes = [
        start_manage(file_db, tmp_path / "engine.log", "run_engine", "--symbols", "ACME"),
        start_manage(file_db, tmp_path / "bridge.log", "run_bridge"),
    ]
    for index, port in enumerate(ports):
        with open(tmp_path / f"web{index}.log", "wb") as out:
            processes.append(
                subprocess.Popen(
                    [
                        *[sys.executable, "-m", "uvicorn", "flashbook_site.asgi:application"],
                        *["--host", "127.0.0.1", "--port", str(port), "--no-access-log"],
                    ],
                    cwd=ROOT,
                    env=subprocess_env(file_db),
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            )
    try:
        deadline = time.monotonic() + 60
        while not all(listening(port) for port in ports):
            assert all(p.poll() is None for p in processes), "a process exited"
            assert time.monotonic() < deadline, "the web servers did not start"
            time.sleep(0.2)
        # The bridge must have seeded the market before the orders: one seeded after them starts
        # from a book that already holds the trade, and (no recorder here) sends no trades frame.
        while not r.exists(snapshot_key("ACME")):
            assert all(p.poll() is None for p in processes), "a process exited"
            assert time.monotonic() < deadline, "the bridge did not seed the market"
            time.sleep(0.2)

        def send_orders():  # as a tool would: straight into the journal
            journal.append(
                "ACME", {"t": "new", "id": 1, "acct": 1, "side": "sell", "px": 10000, "qty": 5}
            )
            journal.append(
                "ACME", {"t": "new", "id": 2, "acct": 2, "side": "buy", "px": 10000, "qty": 3}
            )

        frames = asyncio.run(first_trade_frames(ports, send_orders))
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(15)
            except Exception:  # pragma: no cover
                process.kill()

    trades = [frame["trades"] for frame in frames]
    assert trades[0] == trades[1]  # the same frame, through the one channel layer
    assert [(t["price"], t["qty"], t["side"]) for t in trades[0]] == [("100.00", "3", "buy")]
