"""The FIX session layer: QuickFIX acceptors, one per client's SenderCompID, created when that
client first logs on, behind one listening port.

Why a front port and an acceptor per client: QuickFIX (the C++ engine, which is what the Python
package wraps) only accepts the sessions its settings name when the acceptor is created — it has
no "dynamic sessions" (QuickFIX/J's `AcceptorTemplate`). A client chooses its own SenderCompID, so
the set of sessions is not known in advance. `FixFront` listens on the public port, reads the
first message of a connection (it must be a Logon), checks the API token it carries in
Password(554), and hands the connection — the Logon included, byte for byte — to the QuickFIX
acceptor of that SenderCompID on a loopback port, creating the acceptor the first time. From there
on QuickFIX runs the session: sequence numbers (persisted in a FileStore, so they survive
restarts), heartbeats, test requests, resend requests and gap fills, logout. The front only
copies bytes.

Every callback QuickFIX makes (on its acceptors' threads) is handed to the asyncio loop of the
process (`Handler`), where the gateway and the Channels layer live. Nothing here knows about
orders.
"""

from __future__ import annotations

import asyncio
import logging
import re
import socket
import sysconfig
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import quickfix as fix

log = logging.getLogger("flashbook.fix")

BEGIN_STRING = "FIX.4.4"
SOH = b"\x01"
MAX_LOGON_BYTES = 4096
LOGON_TIMEOUT = 10.0  # seconds a new connection has to send its Logon
COMP_ID = re.compile(r"[A-Za-z0-9._-]{1,32}")
_FRAME = re.compile(rb"8=FIX\.4\.4\x019=(\d{1,5})\x01")


def data_dictionary() -> str:
    """The FIX 4.4 data dictionary shipped with the QuickFIX package (it validates incoming
    messages and tells QuickFIX where repeating groups are)."""
    for base in (sysconfig.get_path("data"), "/usr/local", "/usr"):
        path = Path(base) / "share" / "quickfix" / "FIX44.xml"
        if path.exists():
            return str(path)
    raise RuntimeError("FIX44.xml not found: is the quickfix-py package installed?")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def parse_fields(raw: bytes) -> list[tuple[int, str]]:
    """The tag=value pairs of one raw FIX message."""
    fields = []
    for part in raw.split(SOH):
        tag, sep, value = part.partition(b"=")
        if sep and tag.isdigit():
            fields.append((int(tag), value.decode("latin-1")))
    return fields


def first_message(buffer: bytes) -> bytes | None:
    """The first complete FIX 4.4 message at the start of `buffer`, or None if incomplete."""
    match = _FRAME.match(buffer)
    if match is None:
        if len(buffer) >= 16 and not buffer.startswith(b"8=FIX.4.4\x01"):
            raise ValueError("not a FIX 4.4 message")
        return None
    end = match.end() + int(match.group(1))
    trailer = buffer.find(SOH, end)
    if trailer < 0:
        return None
    if not buffer.startswith(b"10=", end):
        raise ValueError("bad BodyLength")
    return buffer[: trailer + 1]


@dataclass
class Verdict:
    """The front's answer to a Logon, which the acceptor's `fromAdmin` acts on: the account the
    token belongs to, or why it is refused."""

    account_id: int | None
    refusal: str = ""


class Handler:
    """What the session layer calls on the asyncio loop (implemented by the order and market data
    adapters, `exchange.fix.service`)."""

    async def authenticate(self, comp_id: str, password: str) -> Verdict:
        raise NotImplementedError

    def logged_on(self, session_id: fix.SessionID, comp_id: str, account_id: int) -> None:
        raise NotImplementedError

    def logged_out(self, comp_id: str) -> None:
        raise NotImplementedError

    def message(self, comp_id: str, msg_type: str, message: fix.Message) -> None:
        """Called on QuickFIX's thread: copy what is needed out of `message` (it is QuickFIX's,
        valid only during the call) and hand it to the loop."""
        raise NotImplementedError


class _Application(fix.Application):
    """QuickFIX's callbacks for one client's acceptor (they run on its thread)."""

    def __init__(self, front: FixFront, comp_id: str) -> None:
        super().__init__()
        self.front, self.comp_id = front, comp_id
        self.account_id: int | None = None

    def onCreate(self, session_id):
        pass

    def onLogon(self, session_id):
        self.front.on_loop(self.front.handler.logged_on, session_id, self.comp_id, self.account_id)

    def onLogout(self, session_id):
        self.front.on_loop(self.front.handler.logged_out, self.comp_id)

    def toAdmin(self, message, session_id):
        pass

    def fromAdmin(self, message, session_id):
        if message.getHeader().getField(35) != "A":
            return
        # The front checked the token before handing the connection over; a connection made to
        # this acceptor's loopback port directly has no verdict and is refused.
        verdict = self.front.take_verdict(self.comp_id)
        if verdict is None or verdict.account_id is None:
            raise fix.RejectLogon(verdict.refusal if verdict else "Log on through the FIX port.")
        self.account_id = verdict.account_id

    def toApp(self, message, session_id):
        pass

    def fromApp(self, message, session_id):
        self.front.handler.message(self.comp_id, message.getHeader().getField(35), message)


class _Client:
    """One client's QuickFIX acceptor, on a loopback port of its own."""

    def __init__(self, front: FixFront, comp_id: str) -> None:
        self.comp_id = comp_id
        self.port = free_port()
        self.application = _Application(front, comp_id)
        settings = fix.SessionSettings()
        defaults = fix.Dictionary()
        for name, value in front.session_settings(self.port).items():
            defaults.setString(name, value)
        settings.set(defaults)
        session = fix.Dictionary()
        session.setString("BeginString", BEGIN_STRING)
        session.setString("SenderCompID", front.comp_id)
        session.setString("TargetCompID", comp_id)
        self.session_id = fix.SessionID(BEGIN_STRING, front.comp_id, comp_id)
        settings.set(self.session_id, session)
        self.settings = settings
        self.store = fix.FileStoreFactory(settings)
        self.acceptor = fix.SocketAcceptor(self.application, self.store, settings)
        self.acceptor.start()


class FixFront:
    """The public FIX port. `handler` runs on `loop`; QuickFIX's threads reach it through
    `on_loop`."""

    def __init__(
        self,
        handler: Handler,
        *,
        port: int,
        comp_id: str,
        store_dir: Path,
        host: str = "0.0.0.0",
    ) -> None:
        self.handler, self.port, self.host = handler, port, host
        self.comp_id = comp_id
        self.store_dir = Path(store_dir)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.clients: dict[str, _Client] = {}
        self._verdicts: dict[str, Verdict] = {}
        self._lock = threading.Lock()
        self._creating: dict[str, asyncio.Future] = {}
        self.server: asyncio.AbstractServer | None = None

    def session_settings(self, port: int) -> dict[str, str]:
        return {
            "ConnectionType": "acceptor",
            "SocketAcceptPort": str(port),
            "SocketReuseAddress": "Y",
            "SocketNodelay": "Y",
            # One session that never ends: sequence numbers carry on across days and restarts
            # (reset only when the client asks, ResetSeqNumFlag).
            "StartTime": "00:00:00",
            "EndTime": "00:00:00",
            "FileStorePath": str(self.store_dir / "store"),
            "PersistMessages": "Y",
            "UseDataDictionary": "Y",
            "DataDictionary": data_dictionary(),
            "ValidateUserDefinedFields": "N",
            "AllowUnknownMsgFields": "Y",
            "CheckLatency": "N",
        }

    # -- QuickFIX's threads -> the loop ---------------------------------------------------------

    def on_loop(self, function: Callable, *args) -> None:
        self.loop.call_soon_threadsafe(function, *args)

    def take_verdict(self, comp_id: str) -> Verdict | None:
        with self._lock:
            return self._verdicts.pop(comp_id, None)

    # -- the front port -------------------------------------------------------------------------

    async def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.store_dir.mkdir(parents=True, exist_ok=True)
        self.server = await asyncio.start_server(self._connection, self.host, self.port)
        if self.port == 0:
            self.port = self.server.sockets[0].getsockname()[1]

    async def stop(self, grace: float = 3.0) -> None:
        """Stops taking connections and logs every session out (waiting up to `grace` seconds
        for the Logouts to go out). The acceptors are not stopped: QuickFIX's `stop` crashed
        the process now and then (SIGSEGV inside it, under PostgreSQL's timing more often),
        and there is nothing left for it to do — every message a session sent is already in its
        store. `run_fix` then leaves at once."""
        if self.server is not None:
            self.server.close()
        sessions = [
            fix.Session.lookupSession(client.session_id) for client in self.clients.values()
        ]
        sessions = [session for session in sessions if session is not None]
        for session in sessions:
            if session.isLoggedOn():
                session.logout("The exchange's FIX service is stopping.")
        deadline = time.monotonic() + grace
        while any(session.isLoggedOn() for session in sessions) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)

    async def _client(self, comp_id: str) -> _Client:
        client = self.clients.get(comp_id)
        if client is not None:
            return client
        creating = self._creating.get(comp_id)
        if creating is not None:
            return await asyncio.shield(creating)
        creating = self._creating[comp_id] = self.loop.create_future()
        try:
            client = await asyncio.to_thread(_Client, self, comp_id)
            self.clients[comp_id] = client
            creating.set_result(client)
            return client
        except BaseException as exc:
            creating.set_exception(exc)
            raise
        finally:
            self._creating.pop(comp_id, None)

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        try:
            await self._serve(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass  # the client went away, or the process is stopping
        except Exception:
            log.exception("fix: connection failed")
        finally:
            writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        buffer = b""
        try:
            async with asyncio.timeout(LOGON_TIMEOUT):
                while (logon := first_message(buffer)) is None:
                    chunk = await reader.read(MAX_LOGON_BYTES)
                    if not chunk or len(buffer) > MAX_LOGON_BYTES:
                        return
                    buffer += chunk
        except (TimeoutError, ValueError):
            return
        fields = dict(parse_fields(logon))
        comp_id = fields.get(49, "")
        if (
            fields.get(35) != "A"
            or fields.get(56) != self.comp_id
            or not COMP_ID.fullmatch(comp_id)
        ):
            return  # not a Logon to us: QuickFIX would drop it too, without an answer
        verdict = await self.handler.authenticate(comp_id, fields.get(554, ""))
        if verdict.account_id is None:
            # Refused here, never inside the session: a refused logon must not touch the
            # session's sequence numbers or stored messages (they are the account's). The
            # Logout is outside the session too (sequence number 1); a client's engine reads a
            # Logout's Text whatever its sequence number.
            writer.write(self._logout(comp_id, verdict.refusal))
            await writer.drain()
            return
        client = await self._client(comp_id)
        with self._lock:
            self._verdicts[comp_id] = verdict
        upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", client.port)
        upstream_writer.write(buffer)
        await _pipe_both(reader, writer, upstream_reader, upstream_writer)

    def _logout(self, comp_id: str, text: str) -> bytes:
        message = fix.Message()
        header = message.getHeader()
        header.setField(8, BEGIN_STRING)
        header.setField(35, "5")
        header.setField(49, self.comp_id)
        header.setField(56, comp_id)
        header.setField(34, "1")
        header.setField(fix.SendingTime())
        message.setField(58, text)
        return message.toString().encode("latin-1")


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while chunk := await reader.read(65536):
            writer.write(chunk)
            await writer.drain()
    finally:
        writer.close()


async def _pipe_both(client_reader, client_writer, upstream_reader, upstream_writer) -> None:
    """Copies bytes both ways until either side closes; then closes both."""
    tasks = [
        asyncio.create_task(_pipe(client_reader, upstream_writer)),
        asyncio.create_task(_pipe(upstream_reader, client_writer)),
    ]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        upstream_writer.close()
