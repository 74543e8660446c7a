"""Archive and delete trading history older than the retention period (`exchange.retention`)."""

import json
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from exchange.errors import ExchangeError
from exchange.retention import history_prune


class Command(BaseCommand):
    help = (
        "Delete closed orders (with their fills) last changed more than --days ago, and the "
        "trades older than that no fill refers to; open orders, positions and cash are never "
        "touched. --archive DIR first writes the rows to gzipped JSON lines there. Prints one "
        "JSON line: the cutoff and the rows deleted per table. Run it daily (cron, a scheduled "
        "container)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--days",
            type=float,
            default=None,
            help="Retention in days (default FLASHBOOK_RETENTION_DAYS; at least 1).",
        )
        parser.add_argument("--archive", type=Path, help="Folder for the archived rows.")
        parser.add_argument("--batch", type=int, default=5000, help="Rows per transaction.")
        parser.add_argument("--dry-run", action="store_true", help="Only count what would go.")

    def handle(self, *args, **options):
        days = options["days"] if options["days"] is not None else settings.FLASHBOOK_RETENTION_DAYS
        try:
            report = history_prune(
                older_than=timedelta(days=days),
                archive_dir=options["archive"],
                batch=options["batch"],
                dry_run=options["dry_run"],
            )
        except ExchangeError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(json.dumps(report.as_dict()))
