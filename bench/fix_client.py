"""A FIX 4.4 client for `make bench-fix` and the FIX tests: a real QuickFIX initiator
(SocketInitiator, FileStore), logging on with an API token as Password(554), whose received
application messages are kept as parsed dicts for the test to wait on."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import quickfix as fix

from exchange.fix.sessions import data_dictionary

SOH = "\x01"


class Received:
    """A received message: its fields as (tag, value) pairs in order, and the first value of
    each tag."""

    def __init__(self, raw: str) -> None:
        self.raw = raw
        self.pairs = []
        for part in raw.split(SOH):
            tag, sep, value = part.partition("=")
            if sep:
                self.pairs.append((int(tag), value))
        self.fields: dict[int, str] = {}
        for tag, value in self.pairs:
            self.fields.setdefault(tag, value)

    def __getitem__(self, tag: int) -> str:
        return self.fields[tag]

    def get(self, tag: int, default=None):
        return self.fields.get(tag, default)

    @property
    def type(self) -> str:
        return self.fields[35]

    def all(self, tag: int) -> list[str]:
        return [value for t, value in self.pairs if t == tag]

    def __repr__(self) -> str:
        return self.raw.replace(SOH, "|")


class _App(fix.Application):
    def __init__(self, client: FixClient) -> None:
        super().__init__()
        self.client = client

    def onCreate(self, session_id):
        pass

    def onLogon(self, session_id):
        self.client.logged_on.set()

    def onLogout(self, session_id):
        self.client.logged_on.clear()
        self.client.logged_out.set()

    def toAdmin(self, message, session_id):
        if message.getHeader().getField(35) == "A":
            message.setField(554, self.client.password)

    def fromAdmin(self, message, session_id):
        received = Received(message.toString())
        if received.type == "5":
            self.client.logout_text = received.get(58)
        self.client._add(received, admin=True)

    def toApp(self, message, session_id):
        pass

    def fromApp(self, message, session_id):
        self.client._add(Received(message.toString()))


class FixClient:
    def __init__(
        self,
        port: int,
        comp_id: str,
        password: str,
        store: Path,
        *,
        target: str = "FLASHBOOK",
        heartbeat: int = 30,
        on_message=None,
    ) -> None:
        self.comp_id, self.password = comp_id, password
        self.session_id = fix.SessionID("FIX.4.4", comp_id, target)
        self.logged_on = threading.Event()
        self.logged_out = threading.Event()
        self.logout_text: str | None = None
        self.messages: list[Received] = []
        self.admin: list[Received] = []
        self.on_message = on_message
        self._cond = threading.Condition()
        settings = fix.SessionSettings()
        defaults = fix.Dictionary()
        for name, value in {
            "ConnectionType": "initiator",
            "SocketConnectHost": "127.0.0.1",
            "SocketConnectPort": str(port),
            "HeartBtInt": str(heartbeat),
            "StartTime": "00:00:00",
            "EndTime": "00:00:00",
            "FileStorePath": str(store),
            "ReconnectInterval": "1",
            "SocketNodelay": "Y",
            "UseDataDictionary": "Y",
            "DataDictionary": data_dictionary(),
        }.items():
            defaults.setString(name, value)
        settings.set(defaults)
        session = fix.Dictionary()
        session.setString("BeginString", "FIX.4.4")
        session.setString("SenderCompID", comp_id)
        session.setString("TargetCompID", target)
        settings.set(self.session_id, session)
        self._settings = settings
        self._store = fix.FileStoreFactory(settings)
        self._app = _App(self)
        self.initiator = fix.SocketInitiator(self._app, self._store, settings)

    def _add(self, received: Received, admin: bool = False) -> None:
        if self.on_message is not None and not admin:
            self.on_message(received)
            return
        with self._cond:
            (self.admin if admin else self.messages).append(received)
            self._cond.notify_all()

    def start(self, *, wait: bool = True, timeout: float = 10.0) -> FixClient:
        self.initiator.start()
        if wait and not self.logged_on.wait(timeout):
            raise AssertionError(f"{self.comp_id} did not log on (logout: {self.logout_text})")
        return self

    def stop(self, *, force: bool = False) -> None:
        """Logs out (waiting for the answer, unless `force`) and disconnects."""
        if self.initiator is not None:
            self.initiator.stop(force)
            # Destroyed now, before the application it calls (in any order at exit, QuickFIX
            # crashed the process).
            self.initiator = None

    def send(self, msg_type: str, *fields: tuple[int, str], groups=()) -> None:
        message = fix.Message()
        message.getHeader().setField(35, msg_type)
        for tag, value in fields:
            message.setField(tag, value)
        for count_tag, group in groups:
            message.setField(count_tag, str(len(group)))
            for delimiter, entries in group:
                g = fix.Group(count_tag, delimiter)
                for tag, value in entries:
                    g.setField(tag, value)
                message.addGroup(g)
        if not fix.Session.sendToTarget(message, self.session_id):
            raise AssertionError("QuickFIX did not send the message")

    def new_order(
        self,
        clordid: str,
        symbol: str,
        side: str,
        qty: str,
        price: str | None = None,
        *extra: tuple[int, str],
    ) -> None:
        fields = [(11, clordid), (55, symbol), (54, side), (60, _now()), (38, qty)]
        fields.append((40, "2" if price is not None else "1"))
        if price is not None:
            fields.append((44, price))
        self.send("D", *fields, *extra)

    def expect(self, predicate, timeout: float = 10.0, what: str = "") -> Received:
        """Waits for (and takes) the first received application message `predicate` accepts."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for index, message in enumerate(self.messages):
                    if predicate(message):
                        return self.messages.pop(index)
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no {what or 'such message'} in {self.messages!r}")
                self._cond.wait(left)

    def report(self, clordid: str, exec_type: str, timeout: float = 10.0) -> Received:
        return self.expect(
            lambda m: m.type == "8" and m.get(11) == clordid and m.get(150) == exec_type,
            timeout,
            f"ExecutionReport 150={exec_type} for {clordid}",
        )


def _now() -> str:
    return time.strftime("%Y%m%d-%H:%M:%S", time.gmtime())
