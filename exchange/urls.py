from django.urls import path

from exchange.views import HomeView

urlpatterns = [
    path("", HomeView.as_view(), name="home"),
]
