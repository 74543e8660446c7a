"""Admin of the exchange: instruments (listed and delisted as they are saved, with halt / resume
actions that send the commands to the engine), accounts with their positions, API tokens;
orders, fills and trades read-only (they are the recorder's projection of the engine's events).

Numbers are written as everywhere else (`exchange.protocol.decimals`): prices to the tick,
quantities to the lot, money to the currency's decimals — not as Django writes a decimal column
("100.10000000", or a stored zero as "0E-8"). In lists and read-only fields through `_column`, in
forms by `PlainDecimalsForm`."""

from decimal import Decimal

from django import forms
from django.contrib import admin, messages
from django.core.paginator import Paginator
from django.utils.functional import cached_property
from django.utils.html import format_html

from exchange.errors import ExchangeError
from exchange.models import Account, ApiToken, Fill, Instrument, Order, Position, Trade
from exchange.protocol.decimals import decimal_str, money_str, price_str, qty_str
from exchange.services import instrument_enabled_set, instrument_halt_set


def _writer(kind: str):
    """How a value of `kind` is written for an object: "price" and "qty" by the object's
    instrument (or the object itself, an instrument), "money" by the currency."""
    if kind == "money":
        return lambda obj, value: money_str(value)
    attr, write = ("tick_size", price_str) if kind == "price" else ("lot_size", qty_str)

    def written(obj, value):
        instrument = obj if isinstance(obj, Instrument) else obj.instrument
        return write(value, getattr(instrument, attr))

    return written


def _column(field: str, kind: str, label: str | None = None):
    """A list or read-only column showing `field` written as its kind, sortable by the field and
    right-aligned (digits in columns)."""
    write = _writer(kind)

    @admin.display(description=label or field.replace("_", " "), ordering=field)
    def column(obj):
        value = getattr(obj, field)
        return "-" if value is None else write(obj, value)

    column.__name__ = f"{field}_shown"
    return column


class NumberColumns:
    """Right-aligns the `_column`s (static/css/admin_numbers.css)."""

    class Media:
        css = {"all": ("css/admin_numbers.css",)}


class PlainDecimalsForm(forms.ModelForm):
    """A form whose decimal inputs start as the value written plainly ("100000", "0.01"), not as
    the column stores it ("100000.00000000", "0E-8")."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name, value in self.initial.items():
            if isinstance(value, Decimal):
                self.initial[name] = decimal_str(value)


class CappedCountPaginator(Paginator):
    """Counts at most CAP rows. The recorder's tables grow by about a million rows a day at the
    demo's rate, and a COUNT(*) of ten million rows takes seconds on every page view; past the cap
    the list shows CAP rows' worth of pages, newest first, and a filter or a search narrows it."""

    CAP = 10_000

    @cached_property
    def count(self) -> int:
        return self.object_list.values("pk")[: self.CAP].count()


# How the recorder's decimal columns are written, by name: the change page of a read-only row
# shows every field, and a decimal field shown as itself reads "100.10000000", "0E-8".
DECIMAL_KINDS = {
    "price": "price",
    "average_fill_price": "price",
    "quantity": "qty",
    "filled_quantity": "qty",
    "fee": "money",
}


class ReadOnlyAdmin(NumberColumns, admin.ModelAdmin):
    """Rows written by the recorder: look, filter and search, never edit. Listed newest first by
    primary key (its index: no sort of the table), counted up to a cap, no count of the whole
    table beside it, and no date hierarchy (it reads every row's date); date filters instead.
    Its change page shows each decimal field written as its kind (`DECIMAL_KINDS`)."""

    ordering = ("-pk",)
    paginator = CappedCountPaginator
    show_full_result_count = False

    def get_fields(self, request, obj=None):
        # The model's fields, as Django's form would list them (no asking the form: it asks for
        # the read-only fields, which are these).
        return [
            f"{f.name}_shown" if f.name in DECIMAL_KINDS else f.name
            for f in self.model._meta.fields
            if f.editable and not f.auto_created
        ]

    def get_readonly_fields(self, request, obj=None):
        return self.get_fields(request, obj)

    def __getattr__(self, name):
        field = name.removesuffix("_shown")
        if name.endswith("_shown") and field in DECIMAL_KINDS:
            return _column(field, DECIMAL_KINDS[field], field.replace("_", " "))
        raise AttributeError(name)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Instrument)
class InstrumentAdmin(NumberColumns, admin.ModelAdmin):
    form = PlainDecimalsForm
    list_display = (
        "symbol",
        "name",
        "tick_size_shown",
        "lot_size_shown",
        "reference_price_shown",
        "price_band_pct",
        "volatility_move_pct",
        "maker_fee_bps",
        "taker_fee_bps",
        "enabled",
        "halted",
    )

    @admin.display(description="tick size", ordering="tick_size")
    def tick_size_shown(self, obj):
        return decimal_str(obj.tick_size)

    @admin.display(description="lot size", ordering="lot_size")
    def lot_size_shown(self, obj):
        return decimal_str(obj.lot_size)

    reference_price_shown = staticmethod(_column("reference_price", "price"))
    list_filter = ("enabled", "halted")
    search_fields = ("symbol", "name")
    readonly_fields = ("halted", "created_at")
    fieldsets = (
        (
            None,
            {
                "fields": (
                    ("symbol", "name"),
                    ("tick_size", "lot_size"),
                    ("min_order_qty", "max_order_qty"),
                    "reference_price",
                    ("enabled", "halted"),
                    "created_at",
                )
            },
        ),
        (
            "Trading rules (enforced by the engine; a change reaches it when saved)",
            {
                "fields": (
                    "price_band_pct",
                    (
                        "volatility_move_pct",
                        "volatility_window_seconds",
                        "volatility_pause_seconds",
                    ),
                    ("maker_fee_bps", "taker_fee_bps"),
                )
            },
        ),
    )
    actions = ("halt_trading", "resume_trading", "list_instruments", "delist_instruments")

    def save_model(self, request, obj, form, change):
        if not (change and "enabled" in form.changed_data):
            super().save_model(request, obj, form, change)
            return
        # The other fields first; then the service lists or delists (and tells the engine).
        enabled, obj.enabled = obj.enabled, not obj.enabled
        super().save_model(request, obj, form, change)
        instrument_enabled_set(instrument=obj, enabled=enabled)

    def _set_enabled(self, request, queryset, enabled: bool) -> None:
        changed = [i for i in queryset if i.enabled != enabled]
        for instrument in changed:
            instrument_enabled_set(instrument=instrument, enabled=enabled)
        verb = "Listed" if enabled else "Delisted (resting orders cancelled)"
        symbols = ", ".join(i.symbol for i in changed) or "nothing to change"
        self.message_user(request, f"{verb}: {symbols}.", messages.SUCCESS)

    @admin.action(description="List (enable: engines and agents take it on within a second)")
    def list_instruments(self, request, queryset):
        self._set_enabled(request, queryset, True)

    @admin.action(description="Delist (disable: refuse orders, cancel every resting order)")
    def delist_instruments(self, request, queryset):
        self._set_enabled(request, queryset, False)

    def _set_halted(self, request, queryset, halted: bool) -> None:
        verb = "Halted" if halted else "Resumed"
        done = []
        for instrument in queryset:
            try:
                instrument_halt_set(instrument=instrument, halted=halted)
            except ExchangeError as exc:
                self.message_user(request, f"{instrument}: {exc.message}", messages.ERROR)
            else:
                done.append(instrument.symbol)
        if done:
            self.message_user(request, f"{verb}: {', '.join(done)}.", messages.SUCCESS)

    @admin.action(description="Halt trading (send HALT to the engine)")
    def halt_trading(self, request, queryset):
        self._set_halted(request, queryset, True)

    @admin.action(description="Resume trading (send RESUME to the engine)")
    def resume_trading(self, request, queryset):
        self._set_halted(request, queryset, False)


class PositionInline(admin.TabularInline):
    model = Position
    fields = (
        "instrument",
        "quantity_shown",
        "cost_basis_shown",
        "average_price_shown",
        "realized_pnl_shown",
        "updated_at",
    )
    readonly_fields = fields
    quantity_shown = staticmethod(_column("quantity", "qty"))
    cost_basis_shown = staticmethod(_column("cost_basis", "money", "cost basis"))
    average_price_shown = staticmethod(_column("average_price", "price", "average price"))
    realized_pnl_shown = staticmethod(_column("realized_pnl", "money", "realized P&L"))
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Account)
class AccountAdmin(NumberColumns, admin.ModelAdmin):
    form = PlainDecimalsForm
    list_display = (
        "name",
        "user",
        "cash_shown",
        "initial_cash_shown",
        "min_bankroll_shown",
        "active",
    )
    list_filter = ("active",)
    search_fields = ("name", "user__username")
    raw_id_fields = ("user",)
    readonly_fields = ("cash_shown", "created_at")
    exclude = ("cash",)  # shown read-only, written as money
    cash_shown = staticmethod(_column("cash", "money"))
    initial_cash_shown = staticmethod(_column("initial_cash", "money", "initial cash"))
    min_bankroll_shown = staticmethod(_column("min_bankroll", "money", "min bankroll"))
    inlines = (PositionInline,)


@admin.register(Order)
class OrderAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "instrument",
        "account",
        "order_id",
        "client_order_id_shown",
        "side",
        "order_type",
        "price_shown",
        "quantity_shown",
        "filled_quantity_shown",
        "status",
        "created_at",
    )
    price_shown = staticmethod(_column("price", "price"))
    quantity_shown = staticmethod(_column("quantity", "qty"))
    filled_quantity_shown = staticmethod(_column("filled_quantity", "qty", "filled"))

    @admin.display(description="client order id", ordering="client_order_id")
    def client_order_id_shown(self, obj):
        """Up to 32 characters would push the key columns off a 1440 px screen: the first 12,
        the whole id on hover (and in the search, which matches it)."""
        value = obj.client_order_id or ""
        if len(value) <= 12:
            return value or "-"
        return format_html('<span title="{}">{}…</span>', value, value[:12])

    list_filter = ("status", "side", "order_type", "time_in_force", "instrument", "created_at")
    search_fields = ("client_order_id", "order_id", "account__name")
    list_select_related = ("instrument", "account")


@admin.register(Fill)
class FillAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "instrument",
        "account",
        "order",
        "role",
        "side",
        "price_shown",
        "quantity_shown",
        "fee_shown",
        "executed_at",
    )
    price_shown = staticmethod(_column("price", "price"))
    quantity_shown = staticmethod(_column("quantity", "qty"))
    fee_shown = staticmethod(_column("fee", "money"))
    list_filter = ("role", "side", "instrument", "executed_at")
    search_fields = ("account__name", "order__client_order_id", "order__order_id")
    list_select_related = ("instrument", "account", "order")


@admin.register(Trade)
class TradeAdmin(ReadOnlyAdmin):
    list_display = (
        "instrument",
        "seq",
        "price_shown",
        "quantity_shown",
        "aggressor_side",
        "maker_order_id",
        "taker_order_id",
        "executed_at",
    )
    list_filter = ("aggressor_side", "instrument", "executed_at")
    price_shown = staticmethod(_column("price", "price"))
    quantity_shown = staticmethod(_column("quantity", "qty"))
    search_fields = ("seq", "maker_order_id", "taker_order_id")
    list_select_related = ("instrument",)


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Tokens are created by their owners (the secret is shown to them once); here they can be
    seen and revoked (deleted)."""

    list_display = ("name", "user", "prefix", "created_at", "last_used_at")
    search_fields = ("name", "prefix", "user__username")
    readonly_fields = ("user", "name", "prefix", "digest", "created_at", "last_used_at")
    list_select_related = ("user",)

    def has_add_permission(self, request):
        return False
