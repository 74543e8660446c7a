"""FIX 4.4 order entry and market data (`python manage.py run_fix`): `docs/api.md`, "FIX 4.4"."""
