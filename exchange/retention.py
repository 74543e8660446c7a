"""How much trading history the database keeps (`manage.py prune_history`).

At the demo market's rate the orders table grows by about a million rows a day. Closed orders
(filled, cancelled, expired, rejected) whose last change is older than the retention period go,
with their fills; then the trades older than it that no fill refers to any more. Open orders stay
whatever their age, and so do their fills and trades (a resting order keeps what it has done);
positions, cash and realized P&L are sums kept on their own rows, so nothing they say is lost.
The journal and the event streams are Redis's, untouched.

Each batch is one transaction: its rows are written to the archive first (gzipped JSON lines, one
file per table, appended batch by batch), then deleted. A batch that fails leaves its rows in the
database and possibly in the archive too: running again archives them again, so an archive may
hold a row twice, never miss one.
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.utils import timezone

from exchange.errors import InvalidInput
from exchange.models import Fill, Order, OrderStatus, Trade

CLOSED = (OrderStatus.FILLED, OrderStatus.CANCELED, OrderStatus.EXPIRED, OrderStatus.REJECTED)
# A retry with an order's client order id must find that order for at least a day (the API's
# idempotency promise), so history younger than this is never pruned.
MIN_RETENTION = timedelta(days=1)


@dataclass
class PruneReport:
    cutoff: datetime
    dry_run: bool
    orders: int = 0
    fills: int = 0
    trades: int = 0
    archive: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {
            "cutoff": self.cutoff.isoformat(),
            "dry_run": self.dry_run,
            "orders": self.orders,
            "fills": self.fills,
            "trades": self.trades,
            "archive": self.archive,
        }


class _Archive:
    def __init__(self, folder: Path | None, stamp: str):
        self.folder = folder
        self.stamp = stamp
        self.paths: dict[str, str] = {}

    def write(self, table: str, rows) -> None:
        if self.folder is None:
            return
        path = self.folder / f"{table}-{self.stamp}.jsonl.gz"
        with gzip.open(path, "at", encoding="utf-8") as out:  # a gzip member per batch
            for row in rows:
                out.write(json.dumps(row, cls=DjangoJSONEncoder, separators=(",", ":")) + "\n")
        self.paths[table] = str(path)


def history_prune(
    *,
    older_than: timedelta,
    archive_dir: Path | None = None,
    batch: int = 5000,
    dry_run: bool = False,
    now: datetime | None = None,
) -> PruneReport:
    """Archives (when `archive_dir` is given) and deletes the closed orders, fills and trades
    older than `older_than`; returns what it did (with `dry_run`: what it would do)."""
    if older_than < MIN_RETENTION:
        raise InvalidInput(
            "History is kept for at least a day (a retry must find its order that long).",
            field="older_than",
            code="retention_too_short",
        )
    if batch < 1:
        raise InvalidInput("The batch size must be positive.", field="batch")
    cutoff = (now or timezone.now()) - older_than
    report = PruneReport(cutoff=cutoff, dry_run=dry_run)
    orders = Order.objects.filter(status__in=CLOSED, updated_at__lt=cutoff)
    if dry_run:
        report.orders = orders.count()
        report.fills = Fill.objects.filter(order__in=orders).count()
        kept_fills = Fill.objects.exclude(order__in=orders)
        report.trades = (
            Trade.objects.filter(executed_at__lt=cutoff).exclude(fills__in=kept_fills).count()
        )
        return report
    if archive_dir is not None:
        archive_dir.mkdir(parents=True, exist_ok=True)
    archive = _Archive(archive_dir, cutoff.strftime("%Y%m%dT%H%M%SZ"))
    for ids in _batches(orders, batch):
        with transaction.atomic():
            fills = Fill.objects.filter(order_id__in=ids)
            archive.write("fills", fills.values())
            report.fills += fills.delete()[0]
            rows = Order.objects.filter(pk__in=ids)
            archive.write("orders", rows.values())
            report.orders += rows.delete()[0]
    for ids in _batches(Trade.objects.filter(executed_at__lt=cutoff, fills__isnull=True), batch):
        with transaction.atomic():
            rows = Trade.objects.filter(pk__in=ids)
            archive.write("trades", rows.values())
            report.trades += rows.delete()[0]
    report.archive = archive.paths
    return report


def _batches(rows, size: int):
    """The primary keys of `rows`, `size` at a time in key order: each batch is found through the
    key's index from where the last one ended, not by a rescan of what was deleted."""
    last = 0
    while ids := list(rows.filter(pk__gt=last).order_by("pk").values_list("pk", flat=True)[:size]):
        yield ids
        last = ids[-1]
