import functools

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import URLPattern, URLResolver, include, path
from django.utils import translation
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from leads.language import set_language


def _english(view):
    """The OpenAPI schema is the machine contract: English whatever the caller's language."""

    @functools.wraps(view)
    def wrapped(request, *args, **kwargs):
        with translation.override("en"):
            response = view(request, *args, **kwargs)
            if hasattr(response, "render"):
                response.render()
            return response

    return wrapped


api_v1: list[URLPattern | URLResolver] = [
    path("", include("leads.api_urls")),
    path("", include("scoring.api_urls")),
    path("reports/", include("reports.api_urls")),
    path("schema/", _english(SpectacularAPIView.as_view()), name="schema"),
    path("docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="api-docs"),
]

urlpatterns = [
    path("admin/", admin.site.urls),
    # The language picker (issue 24): Django's set_language, which also saves a user's choice.
    path("i18n/setlang/", set_language, name="set_language"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("api/v1/", include(api_v1)),
    path("", include("reports.urls")),
    path("", include("scoring.urls")),
    path("", include("leads.urls")),
]
