"""Server-rendered pages: the market dashboard, the trading page, the account's history, its API
tokens, the API documentation and sign-up. Thin: each gathers what the page's first paint needs
(reads through `exchange.selectors`, writes through `exchange.services`); the market pages' ES
modules take it from there over the REST API and the WebSockets (`exchange.live.consumers`)."""

from functools import lru_cache
from pathlib import Path

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.forms import UserCreationForm
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.safestring import mark_safe
from django.views import View
from django.views.generic import FormView, TemplateView

from exchange.errors import ExchangeError, NotFound
from exchange.pages.forms import TokenCreateForm
from exchange.protocol.decimals import decimal_str, money_str, qty_str
from exchange.selectors import (
    CANDLE_INTERVALS,
    account_pnl_series,
    api_token_list,
    engine_status_get,
    fill_list,
    instrument_list,
    order_history,
)
from exchange.services import account_for_user, api_token_create, api_token_revoke


def _instruments() -> list[dict]:
    return [
        {
            "symbol": i.symbol,
            "name": i.name,
            "tick_size": decimal_str(i.tick_size),
            "lot_size": decimal_str(i.lot_size),
            "min_order_qty": qty_str(i.min_order_qty, i.lot_size),
            "max_order_qty": qty_str(i.max_order_qty, i.lot_size),
            "halted": i.halted,
            "maker_fee_bps": i.maker_fee_bps,
            "taker_fee_bps": i.taker_fee_bps,
        }
        for i in instrument_list().filter(enabled=True)
    ]


class _MarketPage(LoginRequiredMixin, TemplateView):
    """A page about one symbol at a time (`?symbol=`; the first instrument by default). A symbol
    the exchange does not list answers 404 with a page that says so and offers the ones it does
    (never another instrument's page in its place)."""

    def get(self, request, *args, **kwargs):
        self.instruments = _instruments()
        symbols = [i["symbol"] for i in self.instruments]
        asked = request.GET.get("symbol", "").strip()
        if asked and asked.upper() not in symbols:
            context = {"asked": asked, "instruments": self.instruments, "page": request.path}
            return TemplateResponse(request, "exchange/unknown_symbol.html", context, status=404)
        self.symbol = asked.upper() if asked else (symbols[0] if symbols else None)
        return super().get(request, *args, **kwargs)

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        instruments = self.instruments
        symbol = self.symbol
        context["instruments"] = instruments
        context["symbol"] = symbol
        context["page_config"] = {
            "symbol": symbol,
            "instruments": instruments,
            "staff": self.request.user.is_staff,
            "api": "/api/v1/",
            "ws": "/ws/",
        }
        return context


class DashboardView(_MarketPage):
    template_name = "exchange/dashboard.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["engine"] = engine_status_get()
        context["candle_intervals"] = [i for i in CANDLE_INTERVALS if i != "1d"]
        # The symbol's row of the list already read: its name, tick, lot and fees as written.
        context["instrument"] = next(
            (i for i in self.instruments if i["symbol"] == self.symbol), None
        )
        return context


class TradeView(_MarketPage):
    template_name = "exchange/trade.html"


class HistoryView(LoginRequiredMixin, TemplateView):
    """The account's fills and orders over time (paged tables) and its P&L curve."""

    template_name = "exchange/history.html"
    per_page = 25

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        account = account_for_user(self.request.user)
        series = account_pnl_series(account=account)
        context["fills"] = Paginator(fill_list(account=account), self.per_page).get_page(
            self.request.GET.get("fills")
        )
        context["orders"] = Paginator(order_history(account=account), self.per_page).get_page(
            self.request.GET.get("orders")
        )
        context["last"] = series[-1] if series else None
        context["pnl_series"] = [
            {
                "t": point.time.timestamp(),
                "pnl": money_str(point.total),
                "realized": money_str(point.realized),
                "unrealized": money_str(point.unrealized),
            }
            for point in series
        ]
        return context


class TokensView(LoginRequiredMixin, View):
    """The person's API tokens: create one (its secret shown on this answer only), list, revoke
    (`TokenRevokeView`)."""

    template_name = "exchange/tokens.html"

    def render(self, form, *, created=None, secret=None, status=200):
        context = {
            "form": form,
            "tokens": api_token_list(user=self.request.user),
            "created": created,
            "secret": secret,
        }
        return TemplateResponse(self.request, self.template_name, context, status=status)

    def get(self, request):
        return self.render(TokenCreateForm())

    def post(self, request):
        form = TokenCreateForm(request.POST)
        if not form.is_valid():
            return self.render(form, status=400)
        try:
            token, secret = api_token_create(user=request.user, name=form.cleaned_data["name"])
        except ExchangeError as error:
            form.add_error("name" if error.field == "name" else None, error.message)
            return self.render(form, status=error.status)
        # Rendered, not redirected: the secret is never stored anywhere to show it again.
        return self.render(TokenCreateForm(), created=token, secret=secret, status=201)


class TokenRevokeView(LoginRequiredMixin, View):
    def post(self, request, token_id: int):
        try:
            api_token_revoke(user=request.user, token_id=token_id)
        except NotFound:
            raise Http404("No such token.") from None
        messages.success(request, "Token revoked: programs using it are refused from now on.")
        return redirect("tokens")


@lru_cache(maxsize=4)
def _markdown_html(path: Path, mtime: float) -> str:
    from markdown_it import MarkdownIt

    # CommonMark with tables; raw HTML in the file is escaped, not passed through.
    return MarkdownIt("commonmark", {"html": False}).enable("table").render(path.read_text())


class ApiDocsView(TemplateView):
    """docs/api.md, rendered: how a program talks to the exchange (public, as the schema is)."""

    template_name = "exchange/api_docs.html"
    source = Path(settings.BASE_DIR) / "docs" / "api.md"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        try:
            mtime = self.source.stat().st_mtime
        except OSError:
            raise Http404("The API guide is not installed here: see /api/v1/docs/.") from None
        html = _markdown_html(self.source, mtime)
        context["doc_html"] = mark_safe(html)  # rendered with raw HTML escaped
        return context


class SignUpView(FormView):
    """Self-service accounts, unless `FLASHBOOK_SIGNUP_ENABLED` is off (then 404)."""

    template_name = "registration/signup.html"
    form_class = UserCreationForm

    def dispatch(self, request, *args, **kwargs):
        if not settings.FLASHBOOK_SIGNUP_ENABLED:
            raise Http404("Sign-up is turned off.")
        if request.user.is_authenticated:
            return redirect("home")
        return super().dispatch(request, *args, **kwargs)

    def form_valid(self, form):
        user = form.save()
        login(self.request, user)
        return redirect(reverse("home"))
