from django.urls import path

from . import views

urlpatterns = [
    path("dashboard/", views.dashboard, name="dashboard"),
    path("manager/breaches/", views.breaches, name="breaches"),
    path("manager/team/", views.team, name="team"),
    path("manager/team/members/<int:pk>/away/", views.set_away, name="team-away"),
]
