from drf_spectacular.utils import extend_schema
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer
from rest_framework.views import APIView

from recsys_site.permissions import RolePermissions, require_permission
from scenarios.api.serializers import AlgorithmSerializer, QueuedSerializer, ScenarioSerializer, SliceSizeSerializer
from scenarios.models import Scenario
from scenarios.selectors import scenario_slice_size
from scenarios.services import scenario_create, scenario_slice_refresh_queue, scenario_update
from training.algorithms.registry import algorithm_names, get_algorithm
from training.deletion import scenario_delete


class ScenarioViewSet(viewsets.ModelViewSet):
    """Scenarios: each is one recommendation surface with its slice, protocol, model and serving policy."""

    permission_classes = [RolePermissions]
    queryset = Scenario.objects.select_related("parent")
    serializer_class = ScenarioSerializer
    lookup_field = "slug"
    filterset_fields = ["algorithm", "parent__slug"]
    ordering_fields = ["slug", "name", "updated_at"]

    def perform_create(self, serializer: BaseSerializer) -> None:
        serializer.instance = scenario_create(data=serializer.validated_data)
        scenario_slice_refresh_queue(scenario=serializer.instance)

    def perform_update(self, serializer: BaseSerializer) -> None:
        assert isinstance(serializer.instance, Scenario)  # the viewset's object, looked up by slug
        serializer.instance = scenario_update(scenario=serializer.instance, data=serializer.validated_data)
        scenario_slice_refresh_queue(scenario=serializer.instance)

    def perform_destroy(self, instance: Scenario) -> None:
        """Runs, promotions and artifacts go; their history stays in the audit record."""
        scenario_delete(scenario=instance, actor=self.request.user)

    @extend_schema(responses=SliceSizeSerializer, summary="Size of the scenario's slice, computed now")
    @action(detail=True, methods=["get"])
    def slice(self, request: Request, slug: str) -> Response:
        return Response(SliceSizeSerializer(scenario_slice_size(scenario=self.get_object())).data)

    @extend_schema(
        request=None, responses={202: QueuedSerializer}, summary="Recompute the stored slice size on a worker"
    )
    @action(detail=True, methods=["post"], url_path="slice/refresh")
    def slice_refresh(self, request: Request, slug: str) -> Response:
        task_id = scenario_slice_refresh_queue(scenario=self.get_object())
        return Response(
            QueuedSerializer({"task_id": task_id, "status": "queued"}).data, status=status.HTTP_202_ACCEPTED
        )


class AlgorithmListApi(APIView):
    """Every registered algorithm with its hyperparameters (type, default, range)."""

    permission_classes = [require_permission("scenarios.view_scenario")]

    @extend_schema(responses=AlgorithmSerializer(many=True))
    def get(self, request: Request) -> Response:
        algorithms = [get_algorithm(name) for name in algorithm_names()]
        data = [
            {
                "name": algorithm.name,
                "label": algorithm.label,
                "family": algorithm.family,
                "description": algorithm.description,
                "params": [param.describe() for param in algorithm.params],
            }
            for algorithm in algorithms
        ]
        return Response(AlgorithmSerializer(data, many=True).data)
