"""URLs of the Access pages, included by ``twig_auth.urls`` under ``settings/access/``."""

from __future__ import annotations

from django.urls import path, re_path

from twig_auth.authz import views

urlpatterns = [
    path("", views.access, name="access"),
    path("grants/<str:grant_id>/revoke/", views.revoke_grant, name="access_revoke"),
    path("sod/", views.add_sod_rule, name="access_sod_add"),
    path("sod/<int:rule_id>/remove/", views.remove_sod_rule, name="access_sod_remove"),
    path("windows/", views.windows, name="access_windows"),
    re_path(r"^windows/(?P<kind>member|group)/(?P<pk>[0-9]{1,18})/$", views.edit_window, name="access_window"),
    path("policies/", views.policies, name="access_policies"),
    path("policies/new/", views.new_policy, name="access_policy_new"),
    path("policies/<str:policy_id>/", views.edit_policy, name="access_policy"),
    path("policies/<str:policy_id>/toggle/", views.toggle_policy, name="access_policy_toggle"),
    path("policies/<str:policy_id>/delete/", views.delete_policy, name="access_policy_delete"),
    path("try/", views.try_it, name="access_try"),
]
