from typing import Any

from django.db.models import Model
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import generics, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from recsys_site.permissions import require_permission
from recsys_site.schema import ErrorSerializer
from scenarios.models import Scenario
from training.api.serializers import (
    EmbeddingJobSerializer,
    PredictionQuerySerializer,
    PredictionResultSerializer,
    PromoteInputSerializer,
    PromotionSerializer,
    RecommendationQuerySerializer,
    RecommendationResultSerializer,
    RollbackInputSerializer,
    RunCreateInputSerializer,
    SessionRecommendationInputSerializer,
    SimilarQuerySerializer,
    StudyCreateInputSerializer,
    StudySerializer,
    TrainingRunSerializer,
)
from training.embeddings_service import embedding_job_create
from training.models import EmbeddingJob, Promotion, Study, TrainingRun
from training.services import scenario_rollback, training_run_create, training_run_promote
from training.serving import rating_predictions, recommendations_for_session, recommendations_for_user, similar_items
from training.serving_scenarios import serving_scenario
from training.tuning.auto import any_run_cancel
from training.tuning.studies import study_cancel, study_create, study_promote_best


def validated_input(serializer_class: type[serializers.Serializer], data: Any) -> dict[str, Any]:
    """``data`` (a body or query parameters) as ``serializer_class`` validates it; a 400 where it is not valid."""
    payload = serializer_class(data=data)
    payload.is_valid(raise_exception=True)
    return payload.validated_data


class ScenarioRowsApi(generics.ListAPIView):
    """The rows of ``model`` that belong to the scenario the URL's slug names; a POST (where a subclass has one)
    needs ``add_permissions``, every other method ``view_permission``."""

    model: type[Model]
    view_permission: str
    add_permissions: tuple[str, ...] = ()
    related: tuple[str, ...] = ("scenario", "created_by")

    def get_permissions(self):
        if self.request.method == "POST" and self.add_permissions:
            return [require_permission(*self.add_permissions)()]
        return [require_permission(self.view_permission)()]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation: no URL kwargs
            return self.model._default_manager.none()
        scenario = get_object_or_404(Scenario, slug=self.kwargs["slug"])
        return self.model._default_manager.filter(scenario=scenario).select_related(*self.related)


class ScenarioRunsApi(ScenarioRowsApi):
    """Runs of a scenario, newest first (filter with ``?status=``); POST queues a retrain."""

    model = TrainingRun
    view_permission = "training.view_trainingrun"
    add_permissions = ("training.add_trainingrun",)
    serializer_class = TrainingRunSerializer
    filterset_fields = ["status", "algorithm"]
    ordering_fields = ["created_at", "id"]

    @extend_schema(request=RunCreateInputSerializer, responses={201: TrainingRunSerializer}, summary="Queue a retrain")
    def post(self, request: Request, slug: str) -> Response:
        scenario = get_object_or_404(Scenario, slug=slug)
        data = validated_input(RunCreateInputSerializer, request.data)
        run = training_run_create(
            scenario=scenario,
            algorithm=data.get("algorithm"),
            params=data.get("hyperparameters"),
            seed=data.get("seed"),
            queue=data.get("queue"),
            parent=data.get("parent"),
            created_by=request.user,
            members=data.get("members", []),
        )
        return Response(TrainingRunSerializer(run).data, status=status.HTTP_201_CREATED)


class RunDetailApi(generics.RetrieveAPIView):
    """One run: status, progress, metrics at every K, history, timings, artifact checksum."""

    queryset = TrainingRun.objects.select_related("scenario", "created_by")
    serializer_class = TrainingRunSerializer


class RunCancelApi(APIView):
    permission_classes = [require_permission("training.add_trainingrun")]

    @extend_schema(request=None, responses=TrainingRunSerializer, summary="Cancel a queued or running run")
    def post(self, request: Request, pk: int) -> Response:
        run = any_run_cancel(run=get_object_or_404(TrainingRun, pk=pk))
        return Response(TrainingRunSerializer(run).data)


class RunPromoteApi(APIView):
    permission_classes = [require_permission("scenarios.change_scenario")]

    @extend_schema(
        request=PromoteInputSerializer,
        responses={201: PromotionSerializer},
        summary="Make a succeeded run live (for its scenario, or a member of it)",
    )
    def post(self, request: Request, pk: int) -> Response:
        data = validated_input(PromoteInputSerializer, request.data)
        target = data.get("scenario")
        scenario = get_object_or_404(Scenario, slug=target) if target else None
        promotion = training_run_promote(
            run=get_object_or_404(TrainingRun, pk=pk),
            actor=request.user,
            scenario=scenario,
            force=data["force"],
            reason=data["reason"],
        )
        return Response(PromotionSerializer(promotion).data, status=status.HTTP_201_CREATED)


class ScenarioPromotionsApi(ScenarioRowsApi):
    """What served a scenario: its promotions and rollbacks, newest first (who, when, from which run to which,
    why)."""

    model = Promotion
    view_permission = "training.view_promotion"
    related = ("scenario", "actor")
    serializer_class = PromotionSerializer

    def get_queryset(self):
        return super().get_queryset().order_by("-created_at", "-id")


class ScenarioRollbackApi(APIView):
    permission_classes = [require_permission("scenarios.change_scenario")]

    @extend_schema(
        request=RollbackInputSerializer,
        responses={201: PromotionSerializer},
        summary="Put the previous live run back (each rollback goes one step further back in the history)",
    )
    def post(self, request: Request, slug: str) -> Response:
        data = validated_input(RollbackInputSerializer, request.data)
        promotion = scenario_rollback(
            scenario=get_object_or_404(Scenario, slug=slug), actor=request.user, reason=data["reason"]
        )
        return Response(PromotionSerializer(promotion).data, status=status.HTTP_201_CREATED)


class RecommendationsApi(APIView):
    permission_classes = [require_permission("scenarios.view_scenario")]

    @extend_schema(
        parameters=[RecommendationQuerySerializer],
        responses=RecommendationResultSerializer,
        summary="Top-k items for a user from the scenario's live model",
    )
    def get(self, request: Request, slug: str) -> Response:
        query = validated_input(RecommendationQuerySerializer, request.query_params)
        scenario = serving_scenario(slug=slug)
        result = recommendations_for_user(scenario=scenario, user_external_id=query["user"], k=query.get("k"))
        return Response(RecommendationResultSerializer.represent(result))

    @extend_schema(
        request=SessionRecommendationInputSerializer,
        responses=RecommendationResultSerializer,
        summary="Top-k items for an anonymous session's items from the scenario's live model",
    )
    def post(self, request: Request, slug: str) -> Response:
        data = validated_input(SessionRecommendationInputSerializer, request.data)
        scenario = serving_scenario(slug=slug)
        result = recommendations_for_session(
            scenario=scenario,
            item_external_ids=data["items"],
            kinds=data.get("kinds"),
            k=data.get("k"),
        )
        return Response(RecommendationResultSerializer.represent(result))


class PredictionsApi(APIView):
    permission_classes = [require_permission("scenarios.view_scenario")]

    @extend_schema(
        parameters=[PredictionQuerySerializer],
        responses={
            200: PredictionResultSerializer,
            409: OpenApiResponse(
                ErrorSerializer,
                description="The scenario has no live model, or its live model does not predict ratings",
            ),
        },
        summary="Predicted ratings of a user for given items, from the scenario's live model",
    )
    def get(self, request: Request, slug: str) -> Response:
        query = validated_input(PredictionQuerySerializer, request.query_params)
        result = rating_predictions(
            scenario=serving_scenario(slug=slug),
            user_external_id=query["user"],
            item_external_ids=query["items"],
        )
        return Response(PredictionResultSerializer(result).data)


class SimilarItemsApi(APIView):
    permission_classes = [require_permission("scenarios.view_scenario")]

    @extend_schema(
        parameters=[SimilarQuerySerializer, OpenApiParameter("external_id", str, OpenApiParameter.PATH)],
        responses=RecommendationResultSerializer,
        summary="Items similar to one item under the live model",
    )
    def get(self, request: Request, slug: str, external_id: str) -> Response:
        query = validated_input(SimilarQuerySerializer, request.query_params)
        scenario = serving_scenario(slug=slug)
        result = similar_items(scenario=scenario, item_external_id=external_id, k=query.get("k"))
        return Response(RecommendationResultSerializer.represent(result))


class ItemEmbeddingsRefreshApi(APIView):
    """Queue a refresh of the item text embeddings (only items whose text changed are embedded again)."""

    permission_classes = [require_permission("catalog.change_item")]

    @extend_schema(request=None, responses={202: EmbeddingJobSerializer}, summary="Refresh item text embeddings")
    def post(self, request: Request) -> Response:
        job = embedding_job_create(created_by=request.user)
        return Response(EmbeddingJobSerializer(job).data, status=status.HTTP_202_ACCEPTED)


class EmbeddingJobDetailApi(generics.RetrieveAPIView):
    """One embedding refresh: status, progress (0 to 1) and counts of items examined and embedded."""

    queryset = EmbeddingJob.objects.select_related("created_by")
    serializer_class = EmbeddingJobSerializer


class ScenarioStudiesApi(ScenarioRowsApi):
    """Hyperparameter studies of a scenario, newest first; POST starts one (its trials are child runs)."""

    model = Study
    view_permission = "training.view_study"
    add_permissions = ("training.add_study", "training.add_trainingrun")
    serializer_class = StudySerializer
    filterset_fields = ["status"]

    @extend_schema(request=StudyCreateInputSerializer, responses={201: StudySerializer}, summary="Start a study")
    def post(self, request: Request, slug: str) -> Response:
        scenario = get_object_or_404(Scenario, slug=slug)
        data = validated_input(StudyCreateInputSerializer, request.data)
        study = study_create(scenario=scenario, created_by=request.user, **data)
        return Response(StudySerializer(study).data, status=status.HTTP_201_CREATED)


class StudyDetailApi(generics.RetrieveAPIView):
    """One study: budget, status, best trial and every trial with its validation metrics."""

    queryset = Study.objects.select_related("scenario", "created_by")
    serializer_class = StudySerializer


class StudyCancelApi(APIView):
    permission_classes = [require_permission("training.change_study")]

    @extend_schema(request=None, responses=StudySerializer, summary="Stop a study and its running trials")
    def post(self, request: Request, pk: int) -> Response:
        study = study_cancel(study=get_object_or_404(Study, pk=pk))
        return Response(StudySerializer(study).data)


class StudyPromoteApi(APIView):
    permission_classes = [require_permission("scenarios.change_scenario")]

    @extend_schema(
        request=PromoteInputSerializer, responses={201: PromotionSerializer}, summary="Make a study's best trial live"
    )
    def post(self, request: Request, pk: int) -> Response:
        data = validated_input(PromoteInputSerializer, request.data)
        promotion = study_promote_best(
            study=get_object_or_404(Study, pk=pk),
            actor=request.user,
            force=data["force"],
            reason=data["reason"],
        )
        return Response(PromotionSerializer(promotion).data, status=status.HTTP_201_CREATED)
