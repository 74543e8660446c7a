from django.urls import path

from exchange.pages.views import DashboardView, SignUpView, TradeView

urlpatterns = [
    path("", DashboardView.as_view(), name="home"),
    path("trade/", TradeView.as_view(), name="trade"),
    path("signup/", SignUpView.as_view(), name="signup"),
]
