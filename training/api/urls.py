from django.urls import path

from training.api import matrix, views

urlpatterns = [
    path("scenarios/<slug:slug>/runs/", views.ScenarioRunsApi.as_view(), name="scenario-runs"),
    path("scenarios/<slug:slug>/promotions/", views.ScenarioPromotionsApi.as_view(), name="scenario-promotions"),
    path("scenarios/<slug:slug>/rollback/", views.ScenarioRollbackApi.as_view(), name="scenario-rollback"),
    path("scenarios/<slug:slug>/recommendations/", views.RecommendationsApi.as_view(), name="recommendations"),
    path("scenarios/<slug:slug>/predictions/", views.PredictionsApi.as_view(), name="predictions"),
    path(
        "scenarios/<slug:slug>/items/<path:external_id>/similar/", views.SimilarItemsApi.as_view(), name="similar-items"
    ),
    path("scenarios/<slug:slug>/studies/", views.ScenarioStudiesApi.as_view(), name="scenario-studies"),
    path("studies/<int:pk>/", views.StudyDetailApi.as_view(), name="study-detail"),
    path("studies/<int:pk>/cancel/", views.StudyCancelApi.as_view(), name="study-cancel"),
    path("studies/<int:pk>/promote/", views.StudyPromoteApi.as_view(), name="study-promote"),
    path("runs/<int:pk>/", views.RunDetailApi.as_view(), name="run-detail"),
    path("runs/<int:pk>/cancel/", views.RunCancelApi.as_view(), name="run-cancel"),
    path("runs/<int:pk>/promote/", views.RunPromoteApi.as_view(), name="run-promote"),
]

urlpatterns += [
    path("items/embeddings/refresh/", views.ItemEmbeddingsRefreshApi.as_view(), name="item-embeddings-refresh"),
    path("embedding-jobs/<int:pk>/", views.EmbeddingJobDetailApi.as_view(), name="embedding-job-detail"),
]

urlpatterns += [
    path("scenarios/<slug:slug>/matrix/", matrix.GroupMatrixApi.as_view(), name="group-matrix"),
    path("scenarios/<slug:slug>/matrix/compute/", matrix.GroupMatrixComputeApi.as_view(), name="group-matrix-compute"),
    path("matrix-jobs/<int:pk>/", matrix.MatrixJobDetailApi.as_view(), name="matrix-job-detail"),
]
