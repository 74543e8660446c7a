"""Server-rendered pages: the market dashboard, the trading page and sign-up. Thin: each gathers
what the page's first paint needs; the page's ES modules take it from there over the REST API
and the WebSockets (`exchange.live.consumers`)."""

from django.conf import settings
from django.contrib.auth import login
from django.contrib.auth.forms import UserCreationForm
from django.contrib.auth.mixins import LoginRequiredMixin
from django.http import Http404
from django.shortcuts import redirect
from django.urls import reverse
from django.views.generic import FormView, TemplateView

from exchange.protocol.decimals import decimal_str, qty_str
from exchange.selectors import (
    CANDLE_INTERVALS,
    engine_status_get,
    instrument_get,
    instrument_list,
)


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
        }
        for i in instrument_list().filter(enabled=True)
    ]


class _MarketPage(LoginRequiredMixin, TemplateView):
    """A page about one symbol at a time (`?symbol=`; the first instrument by default)."""

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        instruments = _instruments()
        symbols = [i["symbol"] for i in instruments]
        symbol = self.request.GET.get("symbol")
        if symbol not in symbols:
            symbol = symbols[0] if symbols else None
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
        instrument = instrument_get(context["symbol"]) if context["symbol"] else None
        if instrument is not None:
            context["symbol_name"] = instrument.name
            context["tick_size"] = decimal_str(instrument.tick_size)
            context["lot_size"] = decimal_str(instrument.lot_size)
            context["maker_fee_bps"] = instrument.maker_fee_bps
            context["taker_fee_bps"] = instrument.taker_fee_bps
        return context


class TradeView(_MarketPage):
    template_name = "exchange/trade.html"


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
