from django.contrib.auth import views as auth_views
from django.urls import path

from dashboards import explore, matrix_pages, study_views, views

app_name = "dashboards"
urlpatterns = [
    path("", views.home, name="home"),
    path("health/", views.health, name="health"),
    path("scenarios/", views.scenario_list, name="scenario-list"),
    path("scenarios/new/", views.scenario_create_page, name="scenario-create"),
    path("scenarios/<slug:slug>/", views.scenario_detail, name="scenario-detail"),
    path("scenarios/<slug:slug>/edit/", views.scenario_edit_page, name="scenario-edit"),
    path("scenarios/<slug:slug>/retrain/", views.scenario_retrain, name="scenario-retrain"),
    path("scenarios/<slug:slug>/rollback/", views.scenario_rollback_page, name="scenario-rollback"),
    path("scenarios/<slug:slug>/runs.json", views.scenario_runs_json, name="scenario-runs-json"),
    path("scenarios/<slug:slug>/compare/", views.compare, name="compare"),
    path("scenarios/<slug:slug>/samples/", views.samples, name="samples"),
    path("scenarios/<slug:slug>/runs/", explore.runs_table, name="runs-table"),
    path("scenarios/<slug:slug>/browse/", explore.browse, name="browse"),
    path("matrix/", matrix_pages.matrix_index, name="matrix-index"),
    path("scenarios/<slug:slug>/matrix/", matrix_pages.matrix, name="matrix"),
    path("scenarios/<slug:slug>/matrix/compute/", matrix_pages.matrix_compute, name="matrix-compute"),
    path("runs/<int:pk>/", views.run_detail, name="run-detail"),
    path("runs/<int:pk>/cancel/", views.run_cancel, name="run-cancel"),
    path("runs/<int:pk>/promote/", views.run_promote, name="run-promote"),
    path("scenarios/<slug:slug>/studies/new/", study_views.study_start, name="study-start"),
    path("studies/<int:pk>/", study_views.study_detail, name="study-detail"),
    path("studies/<int:pk>/cancel/", study_views.study_cancel_page, name="study-cancel"),
    path("studies/<int:pk>/promote/", study_views.study_promote_page, name="study-promote"),
    path("data/", views.data_overview, name="data-overview"),
]

auth_urlpatterns = [
    path("accounts/login/", auth_views.LoginView.as_view(template_name="registration/login.html"), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
]
