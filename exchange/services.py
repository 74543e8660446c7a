"""Write operations of the exchange (orders go through `exchange.orders.gateway`)."""

import secrets
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractUser
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from exchange.errors import Conflict, InvalidInput, NotFound
from exchange.models import Account, ApiToken, Instrument, Position
from exchange.orders import funds, gateway
from exchange.selectors import ACCOUNT_LIMITS, api_token_digest

API_TOKEN_PREFIX = "fb_"
API_TOKEN_SHOWN = 12  # characters of the secret kept in clear, to recognise a token
API_TOKENS_PER_USER = 100
API_TOKEN_TOUCH_EVERY = timedelta(minutes=1)


@transaction.atomic
def demo_user_ensure(
    *,
    username: str,
    password: str,
    is_superuser: bool = False,
    reset_password: bool = False,
) -> tuple[AbstractUser, bool]:
    """Make sure a demo login exists; return it and whether it was created.

    Idempotent. An existing user keeps the password it has (someone may have changed it in the
    admin) unless `reset_password` is set; its active, staff and superuser flags are restored so
    the demo logins always work as documented.
    """
    user_model = get_user_model()
    user = user_model.objects.select_for_update().filter(username=username).first()
    created = user is None
    if created:
        user = user_model(username=username)

    user.is_active = True
    user.is_staff = is_superuser
    user.is_superuser = is_superuser
    if created or reset_password:
        user.set_password(password)
    user.full_clean(exclude=["password"])
    user.save()
    return user, created


def account_for_user(user: AbstractUser) -> Account:
    """The trading account of a user, created on first use (named after the user, with
    `FLASHBOOK_INITIAL_CASH` in cash)."""
    try:
        return user.trading_account  # loaded with the user by token authentication
    except Account.DoesNotExist:
        pass
    initial_cash = Decimal(str(settings.FLASHBOOK_INITIAL_CASH))
    names = [user.get_username(), f"{user.get_username()}-{user.pk}"]
    for name in names:
        if Account.objects.filter(name=name).exists():
            continue  # an agent's account, say
        try:
            with transaction.atomic():
                return Account.objects.create(
                    user=user, name=name, cash=initial_cash, initial_cash=initial_cash
                )
        except IntegrityError:
            # A concurrent first request created it (or took the name): use what is there.
            account = Account.objects.filter(user=user).first()
            if account is not None:
                return account
    raise Conflict("Could not name the trading account.", code="account_name_taken")


def _limits_apply(account: Account, limits: dict) -> list[str]:
    """Sets the limits given (None: left as they are) on `account`, checked against the model's
    fields, and returns the fields set; a bad value raises InvalidInput naming the limit."""
    fields = []
    for name, value in limits.items():
        if value is not None:
            setattr(account, ACCOUNT_LIMITS[name], value)
            fields.append(ACCOUNT_LIMITS[name])
    try:
        account.clean_fields(exclude=[f.name for f in Account._meta.fields if f.name not in fields])
    except ValidationError as exc:
        field, errors = next(iter(exc.error_dict.items()))
        name = next(n for n, f in ACCOUNT_LIMITS.items() if f == field)
        raise InvalidInput(errors[0].messages[0], field=name) from None
    return fields


def account_create(
    *,
    name: str,
    initial_cash: Decimal,
    min_bankroll: Decimal | None = None,
    max_position: int | None = None,
    max_order_qty: int | None = None,
) -> Account:
    """An account of no user (an agent's, say) with `initial_cash` in cash; the limits not given
    take the model's defaults. Conflict when the name is taken."""
    account = Account(name=name, cash=initial_cash, user=None, active=True)
    _limits_apply(
        account,
        {
            "initial_cash": initial_cash,
            "min_bankroll": min_bankroll,
            "max_position": max_position,
            "max_order_qty": max_order_qty,
        },
    )
    account.cash = account.initial_cash  # as checked and converted
    return _account_save(account)


def account_rename(*, account: Account, name: str) -> Account:
    """Conflict when the name is taken."""
    if account.name != name:
        account.name = name
        _account_save(account, update_fields=["name"])
    return account


def account_limits_set(
    *,
    account: Account,
    initial_cash: Decimal | None = None,
    min_bankroll: Decimal | None = None,
    max_position: int | None = None,
    max_order_qty: int | None = None,
) -> Account:
    """Sets an account's limits (None leaves one as it is): the bankroll a reset restores (the
    cash itself stays what trading made it), the equity below which the gateway refuses new
    orders, the maximum position per instrument in lots (`default_max_position`: carried on
    every order, checked by the engine counting open orders) and the largest order in lots.
    They apply from the next order. Only these fields are written: the cash the recorder keeps
    moving is never overwritten."""
    fields = _limits_apply(
        account,
        {
            "initial_cash": initial_cash,
            "min_bankroll": min_bankroll,
            "max_position": max_position,
            "max_order_qty": max_order_qty,
        },
    )
    if fields:
        _account_save(account, update_fields=fields)
    return account


def _account_save(account: Account, update_fields: list[str] | None = None) -> Account:
    try:
        with transaction.atomic():
            account.save(update_fields=update_fields)
    except IntegrityError:
        raise Conflict(
            f"The account name {account.name!r} is taken.", field="name", code="account_name_taken"
        ) from None
    return account


def api_token_create(*, user: AbstractUser, name: str) -> tuple[ApiToken, str]:
    """Creates a token and returns it with its secret, which is shown this once: only its
    SHA-256 digest is stored."""
    name = name.strip()
    if not name:
        raise InvalidInput("name must not be blank.", field="name", code="blank")
    if ApiToken.objects.filter(user=user).count() >= API_TOKENS_PER_USER:
        raise Conflict(
            f"A user may hold at most {API_TOKENS_PER_USER} tokens; revoke some first.",
            code="too_many_tokens",
        )
    secret = API_TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        user=user,
        name=name,
        prefix=secret[:API_TOKEN_SHOWN],
        digest=api_token_digest(secret),
    )
    return token, secret


def api_token_revoke(*, user: AbstractUser, token_id: int) -> None:
    deleted, _ = ApiToken.objects.filter(user=user, pk=token_id).delete()
    if not deleted:
        raise NotFound("No such token.", code="unknown_token")


def api_token_touch(*, token: ApiToken) -> None:
    """Records that a token was used, at most once a minute (one conditional UPDATE)."""
    now = timezone.now()
    if token.last_used_at is not None and now - token.last_used_at < API_TOKEN_TOUCH_EVERY:
        return
    ApiToken.objects.filter(pk=token.pk).filter(
        Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - API_TOKEN_TOUCH_EVERY)
    ).update(last_used_at=now)
    token.last_used_at = now


def instrument_halt_set(*, instrument: Instrument, halted: bool) -> Instrument:
    """Halts or resumes trading: sends HALT or RESUME to the engine through the gateway, then
    marks the instrument (the gateway then refuses new orders at once). The journal first: if
    the command cannot be sent, nothing changes; if the flag's write fails after it, the
    recorder sets the flag from the engine's HALTED/RESUMED event all the same. So it is not run
    inside a transaction (the gateway refuses to be)."""
    _instrument_command(instrument=instrument, command="halt" if halted else "resume")
    Instrument.objects.filter(pk=instrument.pk).update(halted=halted)
    instrument.halted = halted
    return instrument


_instrument_command = gateway.blocking(gateway.instrument_command)

#: Sends an instrument's engine rules — price band, volatility guard, fees — to its book (after
#: it is created or they change, and
#: when an engine starts: `exchange.listing`). Not inside a transaction (the gateway refuses).
instrument_rules_send = gateway.blocking(gateway.instrument_rules_send)


def instrument_enabled_set(*, instrument: Instrument, enabled: bool) -> Instrument:
    """Lists or delists an instrument. Every role takes the change on within about a second
    (`exchange.listing`: the engines of its shard serve a listed one, the recorder, the bridge and
    the agents runner follow it). Delisting refuses new orders (the gateway reads the flag), then
    halts the book and cancels every resting order: HALT, so that an order a web process let
    through from its cache before it saw the flag cannot rest, then RESET. Listing again sends
    RESUME (an instrument comes back open; halt it afterwards to keep it closed). The commands go
    to the journal once the change is committed (`on_commit`: also inside the admin's
    transaction), and queue there should its engine be down."""
    was = Instrument.objects.filter(pk=instrument.pk).values_list("enabled", flat=True).first()
    instrument.enabled = enabled
    instrument.save(update_fields=["enabled"])
    if was is not None and was != enabled:
        commands = ("halt", "reset") if not enabled else ("resume",)
        transaction.on_commit(lambda: _instrument_commands(instrument, commands))
    return instrument


def _instrument_commands(instrument: Instrument, commands: tuple[str, ...]) -> None:
    for command in commands:
        _instrument_command(instrument=instrument, command=command)
    if commands == ("resume",):
        Instrument.objects.filter(pk=instrument.pk).update(halted=False)
        instrument.halted = False


@transaction.atomic
def instrument_ensure(
    *,
    symbol: str,
    name: str,
    tick_size: Decimal,
    lot_size: Decimal,
    min_order_qty: Decimal,
    max_order_qty: Decimal,
    reference_price: Decimal,
    maker_fee_bps: int = 0,
    taker_fee_bps: int = 0,
) -> tuple[Instrument, bool]:
    """Make sure an instrument exists (idempotent); an existing one is left as configured."""
    instrument = Instrument.objects.filter(symbol=symbol).first()
    if instrument is not None:
        return instrument, False
    instrument = Instrument(
        symbol=symbol,
        name=name,
        tick_size=tick_size,
        lot_size=lot_size,
        min_order_qty=min_order_qty,
        max_order_qty=max_order_qty,
        reference_price=reference_price,
        maker_fee_bps=maker_fee_bps,
        taker_fee_bps=taker_fee_bps,
    )
    instrument.full_clean()
    instrument.save()
    return instrument, True


def instrument_reference_price_set(*, instrument: Instrument, price: Decimal) -> Instrument:
    """Moves an instrument's reference price (a market shock), rounded to its tick grid and never
    below one tick."""
    ticks = max(1, int((price / instrument.tick_size).to_integral_value()))
    instrument.reference_price = instrument.tick_size * ticks
    instrument.save(update_fields=["reference_price"])  # a save: the gateway's cache drops it
    return instrument


@transaction.atomic
def accounts_reset() -> int:
    """Every account back to its initial cash and flat, realized P&L forgotten (a simulation
    reset). Call it only once the engine's RESETs are recorded and while the books are halted:
    an execution recorded afterwards from before the reset would otherwise be counted again."""
    count = Account.objects.update(cash=F("initial_cash"))
    # The funds states hold the cash before the reset: each is rebuilt from the database by its
    # account's next buy. After the commit, so that the rebuild reads the reset cash.
    ids = list(Account.objects.values_list("pk", flat=True))
    transaction.on_commit(lambda: funds.forget(ids))
    Position.objects.exclude(quantity=0, cost_basis=0, realized_pnl=0, fees_paid=0).update(
        quantity=Decimal(0), cost_basis=Decimal(0), realized_pnl=Decimal(0), fees_paid=Decimal(0)
    )
    return count
