"""`/api/v1/` routes. Resources end with a slash; actions on them (`cancel`, `replace`, `halt`,
`resume`, `cancel-all`) do not."""

from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from exchange.api import views

app_name = "api"

urlpatterns = [
    path("instruments/", views.InstrumentListApi.as_view(), name="instrument-list"),
    path("instruments/<str:symbol>/", views.InstrumentDetailApi.as_view(), name="instrument"),
    path("instruments/<str:symbol>/book/", views.InstrumentBookApi.as_view(), name="book"),
    path("instruments/<str:symbol>/trades/", views.InstrumentTradesApi.as_view(), name="trades"),
    path("instruments/<str:symbol>/candles/", views.InstrumentCandlesApi.as_view(), name="candles"),
    path("instruments/<str:symbol>/halt", views.InstrumentHaltApi.as_view(), name="halt"),
    path("instruments/<str:symbol>/resume", views.InstrumentResumeApi.as_view(), name="resume"),
    path("orders/", views.OrderListCreateApi.as_view(), name="order-list"),
    path("orders/cancel-all", views.OrderCancelAllApi.as_view(), name="order-cancel-all"),
    path("orders/<int:pk>/", views.OrderDetailApi.as_view(), name="order"),
    path("orders/<int:pk>/cancel", views.OrderCancelApi.as_view(), name="order-cancel"),
    path("orders/<int:pk>/replace", views.OrderReplaceApi.as_view(), name="order-replace"),
    path("account/", views.AccountApi.as_view(), name="account"),
    path("account/fills/", views.AccountFillsApi.as_view(), name="fills"),
    path("tokens/", views.TokenListCreateApi.as_view(), name="token-list"),
    path("tokens/<int:pk>/", views.TokenDetailApi.as_view(), name="token"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api:schema"), name="docs"),
    path("redoc/", SpectacularRedocView.as_view(url_name="api:schema"), name="redoc"),
]
