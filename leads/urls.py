from django.urls import path

from . import list_views, views, views_people

urlpatterns = [
    path("", views.home, name="home"),
    path("inbox/", views.inbox, name="inbox"),
    path("leads/", list_views.lead_list, name="lead-list"),
    path("my-sqls/", list_views.my_sqls, name="my-sqls"),
    path("leads/<int:pk>/", views.lead_detail, name="lead-detail"),
    path("leads/<int:pk>/promote/", views.promote, name="lead-promote"),
    path("leads/<int:pk>/accept/", views.accept, name="lead-accept"),
    path("leads/<int:pk>/reject/", views.reject, name="lead-reject"),
    path("leads/<int:pk>/recycle/", views.recycle, name="lead-recycle"),
    path("leads/<int:pk>/disqualify/", views.disqualify, name="lead-disqualify"),
    path("leads/<int:pk>/qualify/", views.qualify, name="lead-qualify"),
    path("leads/<int:pk>/close/", views.close, name="lead-close"),
    path("leads/<int:pk>/touches/", views.log_touch, name="lead-touch"),
    path("leads/<int:pk>/reassign/", views.reassign, name="lead-reassign"),
    path("leads/duplicates/", views_people.duplicates, name="lead-duplicates"),
    path("leads/duplicates/merge/", views_people.merge, name="lead-duplicates-merge"),
    path("manager/team/", views.team, name="team"),
    path("manager/team/members/<int:pk>/away/", views.set_away, name="team-away"),
]
