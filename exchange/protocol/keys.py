"""Redis key names. Every key Flashbook owns starts with `FLASHBOOK_REDIS_PREFIX`; a symbol's keys
carry the symbol as a Redis Cluster hash tag (`{prefix}:{kind}:{SYM}`), so that all of one symbol's
keys live on one slot, and an account's keys the account (`{a42}`) for the same reason.

The kinds of a symbol's keys: `cmd` (the journal), `evt` (the engine's events), `md` (market data),
`book` (the engine's published book), `queue` (the queues of its best levels), `status` (the
worker's status hash), `lastid` (the symbol's highest order id), `snap` (the engine's snapshot),
`ws` (the bridge's snapshot for new subscribers), `reply` (per listener, below). The registry of
enabled instruments (`instruments_key`, `instruments_version_key`) is the engine's too
(`engine_rs/src/feed.rs`). A caller passes `prefix` where no Django settings are loaded (the
benchmarks)."""

from __future__ import annotations

from django.conf import settings


def prefix() -> str:
    return settings.FLASHBOOK_REDIS_PREFIX


def key(kind: str, symbol: str, *, prefix: str | None = None) -> str:
    """`{prefix}:{kind}:{SYM}`: one of a symbol's keys."""
    return f"{_prefix(prefix)}:{kind}:{{{symbol}}}"


def symbol_of(name: str | bytes, kind: str, *, prefix: str | None = None) -> str | None:
    """The symbol a key of this kind names (`key`'s inverse), or None for another key."""
    if isinstance(name, bytes):
        name = name.decode()
    head = f"{_prefix(prefix)}:{kind}:{{"
    if not (name.startswith(head) and name.endswith("}")):
        return None
    return name[len(head) : -1]


def pattern(kind: str) -> str:
    """A glob (`PSUBSCRIBE`, `SCAN MATCH`) for every symbol's key of this kind."""
    return f"{_escape_glob(prefix())}:{kind}:*"


def id_counter_key() -> str:
    """The exchange-wide order id counter."""
    return f"{prefix()}:oid"


def instruments_key() -> str:
    """The set of enabled symbols, the engines' registry (`exchange.listing`)."""
    return f"{prefix()}:instruments"


def instruments_version_key() -> str:
    """A counter bumped whenever the enabled set changes: what every role watches to take on a
    new instrument (or drop a disabled one) without a restart."""
    return f"{prefix()}:instruments:version"


def pending_key(account_id: int) -> str:
    """The hash of an account's orders the recorder has not recorded yet (and their client order
    ids' index)."""
    return f"{prefix()}:pending:{{a{account_id}}}"


def funds_key(account_id: int) -> str:
    """The hash of an account's buying power: its cash and what its open buy orders reserve, in
    integer units of `rules.FUNDS_UNIT` (`exchange.orders.funds`). Same hash tag as the
    account's pending orders, so an account's keys share a Redis Cluster slot."""
    return f"{prefix()}:funds:{{a{account_id}}}"


def reply_key(symbol: str, listener: str) -> str:
    """Where the engine answers the NEWs of one listening process."""
    return f"{prefix()}:reply:{{{symbol}}}:{listener}"


def throttle_key(user_id: int, window: int) -> str:
    """A user's count of order writes in one window of the order rate."""
    return f"{prefix()}:throttle:orders:{user_id}:{window}"


def watch_key() -> str:
    """A sorted set of account ids that have a private WebSocket open (score: expiry time)."""
    return f"{prefix()}:ws:watch"


def watching_key() -> str:
    """The time (seconds since the epoch, a float string) at which the bridge last read
    `watch_key`: an account registered before it has its executions sent from then on."""
    return f"{prefix()}:ws:watching"


def fix_comp_key(comp_id: str) -> str:
    """The account a FIX SenderCompID belongs to (set by the first logon that uses it)."""
    return f"{prefix()}:fix:comp:{comp_id}"


def _prefix(given: str | None) -> str:
    return prefix() if given is None else given


def _escape_glob(text: str) -> str:
    return "".join(f"\\{c}" if c in "*?[]\\" else c for c in text)
