from django.contrib.auth.mixins import LoginRequiredMixin
from django.views.generic import TemplateView

from exchange.selectors import engine_status_get


class HomeView(LoginRequiredMixin, TemplateView):
    """The signed-in landing page. Becomes the live market dashboard in a later release."""

    template_name = "exchange/home.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["engine"] = engine_status_get()
        return context
