from django.urls import path

from . import views

urlpatterns = [
    path("agreement/", views.agreement, name="agreement"),
    path("rejected/", views.rejected, name="rejected-mqls"),
]
