from django.urls import path
from rest_framework.routers import SimpleRouter

from . import api, api_people, api_tokens

router = SimpleRouter()
router.register("leads", api.LeadViewSet, basename="api-lead")
router.register("webhooks", api.WebhookViewSet, basename="api-webhook")
router.register("tokens", api_tokens.ApiTokenViewSet, basename="api-token")

urlpatterns = [
    path("events/", api.EventsView.as_view(), name="api-events"),
    path("import/", api.ImportView.as_view(), name="api-import"),
    path("import/jobs/<uuid:pk>/", api.ImportJobView.as_view(), name="api-import-job"),
    path("import/jobs/<uuid:pk>/rejects/", api.ImportRejectsView.as_view(), name="api-import-job-rejects"),
    # SPEC names the export without a trailing slash.
    path(
        "leads/export.csv",
        api.LeadViewSet.as_view({"get": "export_csv"}),
        name="api-lead-export",
    ),
    # People (issue 21): duplicates, merge, privacy requests, consent.
    path("leads/duplicates/", api_people.DuplicatesView.as_view(), name="api-lead-duplicates"),
    path("leads/<int:pk>/merge/", api_people.MergeView.as_view(), name="api-lead-merge"),
    path("leads/<int:pk>/privacy-export/", api_people.PrivacyExportView.as_view(), name="api-lead-privacy-export"),
    path("leads/<int:pk>/erase/", api_people.EraseView.as_view(), name="api-lead-erase"),
    path("leads/<int:pk>/consent/", api_people.ConsentView.as_view(), name="api-lead-consent"),
    *router.urls,
]
