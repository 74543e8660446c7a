from django.urls import path

from exchange.pages.views import (
    ApiDocsView,
    DashboardView,
    HistoryView,
    SignUpView,
    TokenRevokeView,
    TokensView,
    TradeView,
)

urlpatterns = [
    path("", DashboardView.as_view(), name="home"),
    path("trade/", TradeView.as_view(), name="trade"),
    path("history/", HistoryView.as_view(), name="history"),
    path("tokens/", TokensView.as_view(), name="tokens"),
    path("tokens/<int:token_id>/revoke/", TokenRevokeView.as_view(), name="token-revoke"),
    path("docs/api/", ApiDocsView.as_view(), name="api-docs"),
    path("signup/", SignUpView.as_view(), name="signup"),
]
