"""`/api/v1/` routes. Resources end with a slash; actions on them (`cancel`, `replace`, `halt`,
`resume`, `cancel-all`) do not; each answers in the other form too (`routes.route`)."""

from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from exchange.api import views
from exchange.api.routes import route

app_name = "api"

urlpatterns = [
    *route("", views.ApiIndexApi.as_view(), "index"),
    *route("time/", views.ServerTimeApi.as_view(), "time"),
    *route("instruments/", views.InstrumentListApi.as_view(), "instrument-list"),
    *route("instruments/<str:symbol>/", views.InstrumentDetailApi.as_view(), "instrument"),
    *route("instruments/<str:symbol>/book/", views.InstrumentBookApi.as_view(), "book"),
    *route("instruments/<str:symbol>/trades/", views.InstrumentTradesApi.as_view(), "trades"),
    *route("instruments/<str:symbol>/candles/", views.InstrumentCandlesApi.as_view(), "candles"),
    *route("instruments/<str:symbol>/halt", views.InstrumentHaltApi.as_view(), "halt"),
    *route("instruments/<str:symbol>/resume", views.InstrumentResumeApi.as_view(), "resume"),
    *route("orders/", views.OrderListCreateApi.as_view(), "order-list"),
    *route("orders/cancel-all", views.OrderCancelAllApi.as_view(), "order-cancel-all"),
    *route("orders/<int:pk>/", views.OrderDetailApi.as_view(), "order"),
    *route(
        "orders/by-client-id/<str:client_order_id>/",
        views.OrderByClientOrderIdApi.as_view(),
        "order-by-client-id",
    ),
    *route("orders/<int:pk>/cancel", views.OrderCancelApi.as_view(), "order-cancel"),
    *route("orders/<int:pk>/replace", views.OrderReplaceApi.as_view(), "order-replace"),
    *route("account/", views.AccountApi.as_view(), "account"),
    *route("account/fills/", views.AccountFillsApi.as_view(), "fills"),
    *route("tokens/", views.TokenListCreateApi.as_view(), "token-list"),
    *route("tokens/<int:pk>/", views.TokenDetailApi.as_view(), "token"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api:schema"), name="docs"),
    path("redoc/", SpectacularRedocView.as_view(url_name="api:schema"), name="redoc"),
]
