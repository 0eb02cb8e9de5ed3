"""The scenario × model matrix over REST: read a group's matrix, queue a computation, follow the job."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from recsys_site.permissions import require_permission
from scenarios.models import Scenario
from training.matrix import Matrix, baselines_parse, group_matrix, group_matrix_queue
from training.models import MatrixJob


class MatrixJobSerializer(serializers.ModelSerializer):
    group: serializers.SlugRelatedField[Scenario] = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    created_by: serializers.SlugRelatedField[User] = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = MatrixJob
        fields = ["id", "group", "status", "cells_computed", "error", "task_id", "created_by", "created_at",
                  "started_at", "finished_at"]  # fmt: skip
        read_only_fields = fields


class MatrixRunSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    algorithm = serializers.CharField()
    scenario = serializers.CharField(help_text="The scenario the run was trained on (the group or a member).")


class MatrixMemberSerializer(serializers.Serializer):
    scenario = serializers.CharField()
    baseline_run = serializers.IntegerField(allow_null=True)
    baseline_picked = serializers.BooleanField(help_text="False: the default, the member's best run on validation.")


class MatrixCellSerializer(serializers.Serializer):
    run = serializers.IntegerField()
    scenario = serializers.CharField()
    state = serializers.ChoiceField(choices=["ok", "stale", "missing", "n/a"])
    reason = serializers.CharField(allow_blank=True)
    metrics = serializers.DictField(child=serializers.FloatField(), help_text="Every metric at every K.")
    validation = serializers.DictField(child=serializers.FloatField(allow_null=True))
    change_vs_baseline = serializers.DictField(
        child=serializers.FloatField(), help_text="Per metric, the cell minus the baseline's (current cells only)."
    )
    split = serializers.DictField(help_text="The group split the cell was computed on.")


class MatrixSerializer(serializers.Serializer):
    group = serializers.CharField()
    split = serializers.DictField(help_text="The group's split now: source, protocol, shares, seed and data snapshot.")
    complete = serializers.BooleanField()
    members = MatrixMemberSerializer(many=True)
    runs = MatrixRunSerializer(many=True)
    cells = MatrixCellSerializer(many=True)
    latest_job = MatrixJobSerializer(allow_null=True)


def matrix_payload(matrix: Matrix) -> dict:
    cells = []
    for run in matrix.runs:
        for member in matrix.members:
            cell = matrix.cells[(run.pk, member.pk)]
            base = matrix.baseline_metrics(member)
            change = {name: value - base[name] for name, value in cell.metrics.items() if name in base}
            cells.append({"run": run.pk, "scenario": member.slug, "state": cell.state, "reason": cell.reason,
                          "metrics": cell.metrics, "validation": cell.validation, "split": cell.split,
                          "change_vs_baseline": change if cell.state == "ok" else {}})  # fmt: skip
    return {
        "group": matrix.group.slug,
        "split": matrix.settings,
        "complete": matrix.complete,
        "members": [
            {"scenario": m.slug, "baseline_run": matrix.baselines[m.pk], "baseline_picked": matrix.chosen[m.pk]}
            for m in matrix.members
        ],
        "runs": [{"id": run.pk, "algorithm": run.algorithm, "scenario": run.scenario.slug} for run in matrix.runs],
        "cells": cells,
        "latest_job": matrix.latest_job,
    }


class GroupMatrixApi(APIView):
    """A group's scenario × model matrix: every run on every member, each cell's state and metrics at every K."""

    permission_classes = [require_permission("scenarios.view_scenario")]

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "baseline", str, many=True, description="MEMBER:RUN_ID, the baseline of a member (repeatable)"
            )
        ],
        responses=MatrixSerializer,
        summary="The scenario × model matrix of a group",
    )
    def get(self, request: Request, slug: str) -> Response:
        group = get_object_or_404(Scenario, slug=slug)
        baselines = baselines_parse(group=group, values=request.query_params.getlist("baseline"))
        return Response(MatrixSerializer(matrix_payload(group_matrix(group=group, baselines=baselines))).data)


class GroupMatrixComputeApi(APIView):
    permission_classes = [require_permission("training.add_trainingrun")]

    @extend_schema(request=None, responses={202: MatrixJobSerializer}, summary="Compute missing and stale cells")
    def post(self, request: Request, slug: str) -> Response:
        job = group_matrix_queue(group=get_object_or_404(Scenario, slug=slug), created_by=request.user)
        return Response(MatrixJobSerializer(job).data, status=status.HTTP_202_ACCEPTED)


class MatrixJobDetailApi(generics.RetrieveAPIView):
    """One matrix computation: status and how many cells it computed."""

    permission_classes = [require_permission("scenarios.view_scenario")]
    queryset = MatrixJob.objects.select_related("group", "created_by")
    serializer_class = MatrixJobSerializer
