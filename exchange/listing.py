"""Which instruments are listed, and the rules the engine enforces on them, as every role learns
them without a restart.

The database says which instruments are enabled; Redis carries that to the processes that act on
it: the set of enabled symbols (`keys.instruments_key`), from which the engine workers take on the
symbols of their shard (`engine_rs/src/worker.rs`, `Discovery`), and a counter bumped with every
change (`keys.instruments_version_key`), which the recorder and the bridge look at about once a
second (`ListingWatch`) to reload their instruments when it moves (the agents runner sees a listing
through its agents' configurations, which it polls every second). One GET a second per process
costs nothing measurable at rest; a pub/sub notice would need a connection of its own in each and
still a poll to survive a missed message.

The set is rewritten from the database after every commit that saves or deletes an instrument
(`transaction.on_commit`, so a rolled-back edit changes nothing) and when an engine starts
(`manage.py run_engine`), so a Redis that lost its keys gets it back. An instrument's engine rules
(price band, volatility guard, fees) go to its journal the same way: after the commit that creates
an instrument with rules, changes them or lists it again, and when an engine starts
(`rules_sync`).
"""

from __future__ import annotations

import argparse
import logging

import flashbook_engine
import redis
import redis.cluster
from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from exchange.models import Instrument
from exchange.orders import journal
from exchange.orders.rules import rules_are_defaults
from exchange.protocol.keys import instruments_key, instruments_version_key

logger = logging.getLogger("flashbook.listing")

WATCH_INTERVAL = 1.0  # seconds between a role's looks at the counter


def registry_sync(client: redis.Redis | None = None) -> list[str]:
    """Writes the enabled symbols to the registry (replacing it) and bumps the counter, in one
    MULTI; returns them. On a Redis Cluster the two keys (untagged: the engine reads them by
    name) are in different slots, which no MULTI spans: the set is replaced in a MULTI of its
    own, then the counter bumped, so a role that sees the counter move reads the new set."""
    symbols = sorted(Instrument.objects.filter(enabled=True).values_list("symbol", flat=True))
    client = client or journal.client()
    cluster = isinstance(client, redis.cluster.RedisCluster)
    pipe = client.pipeline(transaction=True)
    pipe.delete(instruments_key())
    if symbols:
        pipe.sadd(instruments_key(), *symbols)
    if cluster:
        pipe.execute()
        client.incr(instruments_version_key())
        return symbols
    pipe.incr(instruments_version_key())
    pipe.execute()
    return symbols


def shard_argument(text: str) -> tuple[int, int]:
    """`I/N` on a command line (`run_engine --shard`, `exchange_status --shard`)."""
    try:
        index, count = (int(part) for part in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: write the shard as I/N, e.g. 1/2") from None
    if not 1 <= index <= count:
        raise argparse.ArgumentTypeError(f"{text!r}: the shard must be from 1 to {count}")
    return index, count


def of_shard(symbols, shard: tuple[int, int]) -> list[str]:
    """The symbols engine shard `shard` = (i, n) serves (the engine's own rule)."""
    index, count = shard
    return [s for s in symbols if flashbook_engine.symbol_shard(s, count) == index]


class ListingWatch:
    """When a role should reload its instruments: `due(now)` says whether to look at the counter
    (at most every `interval` seconds), `moved(version)` whether what it read differs from the
    last look (the first look counts as a move). No I/O: each role reads the counter with its
    own client, sync or async."""

    def __init__(self, interval: float = WATCH_INTERVAL):
        self.interval = interval
        self._next = 0.0
        self._version: int | None = None

    def due(self, now: float) -> bool:
        if now < self._next:
            return False
        self._next = now + self.interval
        return True

    def moved(self, version: bytes | str | int | None) -> bool:
        version = int(version or 0)
        moved = version != self._version
        self._version = version
        return moved


def rules_sync(symbols) -> None:
    """Sends the engine the rules it enforces (price band, volatility guard, fees) of these
    instruments: when an engine starts, so that a journal older than a rule, or a Redis that lost
    its keys, gets them."""
    from exchange.services import instrument_rules_send

    for instrument in Instrument.objects.filter(symbol__in=list(symbols)):
        # A fresh book's defaults are right for an instrument without rules: nothing to send.
        if not rules_are_defaults(instrument):
            instrument_rules_send(instrument=instrument)


def _sync_after_commit() -> None:
    try:
        registry_sync()
    except redis.RedisError:
        # The database change stands; the registry catches up at the next change or engine start.
        # Until then a new instrument's orders are refused (no engine serves it), never lost.
        logger.exception("could not write the instruments registry")


def _send_rules_after_commit(pk: int) -> None:
    from exchange.errors import ExchangeError
    from exchange.services import instrument_rules_send

    instrument = Instrument.objects.filter(pk=pk).first()
    if instrument is None:
        return
    try:
        instrument_rules_send(instrument=instrument)
    except ExchangeError:
        # As above: the engine gets the rules when it next starts, or at the next change.
        logger.exception("could not send %s's rules to the engine", instrument.symbol)


LISTING_FIELDS = frozenset({"enabled"})
# "enabled": listed again, its rules with it.
RULE_FIELDS = frozenset(
    {
        "enabled",
        "price_band_pct",
        "volatility_move_pct",
        "volatility_window_seconds",
        "volatility_pause_seconds",
        "maker_fee_bps",
        "taker_fee_bps",
    }
)


@receiver(post_save, sender=Instrument, dispatch_uid="listing-saved")
@receiver(post_delete, sender=Instrument, dispatch_uid="listing-deleted")
def _instrument_changed(sender, instance, update_fields=None, created=False, **kwargs) -> None:
    # Saves of other fields alone (a shock moves the reference price) change neither.
    if update_fields is None or LISTING_FIELDS & set(update_fields):
        transaction.on_commit(_sync_after_commit)
    if (
        kwargs.get("signal") is post_save
        and instance.enabled  # a delisted instrument's book needs no rules
        and (created or update_fields is None or RULE_FIELDS & set(update_fields))
        and not (created and rules_are_defaults(instance))  # a new book has them already
    ):
        transaction.on_commit(lambda pk=instance.pk: _send_rules_after_commit(pk))
