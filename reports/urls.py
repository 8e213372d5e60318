from django.urls import path

from . import views

urlpatterns = [
    path("dashboard/", views.dashboard, name="dashboard"),
    path("manager/breaches/", views.breaches, name="breaches"),
]
