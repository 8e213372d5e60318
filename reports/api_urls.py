from django.urls import path

from . import selectors
from .api import report_view

urlpatterns = [path(f"{name}/", report_view(name), name=f"report-{name}") for name in selectors.REPORTS]
