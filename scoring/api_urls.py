from django.urls import path
from rest_framework.routers import SimpleRouter

from . import api

router = SimpleRouter()
router.register("definitions", api.DefinitionViewSet, basename="api-definition")

urlpatterns = [
    path("leads/<int:pk>/score/", api.LeadScoreView.as_view(), name="api-lead-score"),
    *router.urls,
]
