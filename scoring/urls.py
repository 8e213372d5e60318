from django.urls import path

from . import views

urlpatterns = [
    path("agreement/", views.agreement, name="agreement"),
]
