"""Top-level URL configuration."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.templatetags.static import static
from django.urls import include, path, re_path
from django.views.generic import RedirectView

from exchange.api.errors import api_not_found


class FaviconView(RedirectView):
    permanent = True

    def get_redirect_url(self, *args, **kwargs):
        return static("img/favicon.svg")  # at request time: the manifest's hashed name


admin.site.site_header = "Flashbook administration"
admin.site.site_title = "Flashbook admin"
admin.site.index_title = "Exchange and simulation settings"

urlpatterns = [
    path("admin/", admin.site.urls),
    # Browsers ask for /favicon.ico whatever the page's <link rel="icon"> says (the admin's pages
    # have none).
    path("favicon.ico", FaviconView.as_view()),
    path(
        "login/",
        auth_views.LoginView.as_view(redirect_authenticated_user=True),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("api/v1/", include("exchange.api.urls")),
    path("api/v1/", include("agents.api.urls")),
    # Anything else under /api/ answers in the API's error format, DEBUG or not (Django's own
    # DEBUG 404 page would list the URL patterns).
    re_path(r"^api/", api_not_found),
    path("research/", include("agents.pages.urls")),
    path("", include("exchange.pages.urls")),
]

# Under /api/ these answer in the API's error format; elsewhere they are Django's pages.
handler400 = "exchange.api.errors.handler400"
handler403 = "exchange.api.errors.handler403"
handler404 = "exchange.api.errors.handler404"
handler500 = "exchange.api.errors.handler500"
