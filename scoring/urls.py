from django.urls import path

from . import views

urlpatterns = [
    path("agreement/", views.agreement, name="agreement"),
    path("rejected/", views.rejected, name="rejected-mqls"),
    path("won-profile/", views.won_profile, name="won-profile"),
]
