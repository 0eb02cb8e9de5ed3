from django.conf import settings
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.exceptions import NotFound
from rest_framework.pagination import CursorPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer

from catalog.api.filtersets import EndUserFilter, InteractionFilter, ItemFilter
from catalog.api.serializers import (
    EndUserSerializer,
    EventBatchInputSerializer,
    IngestResultSerializer,
    InteractionSerializer,
    ItemSerializer,
    events_parse,
)
from catalog.models import EndUser, Interaction, Item
from catalog.services import interactions_ingest
from recsys_site.errors import ValidationFailed
from recsys_site.parsers import StorableJSONParser, text_problem
from recsys_site.permissions import RolePermissions
from recsys_site.serving_version import catalog_version_bump
from training.deletion import end_user_delete

# Any id that can be ingested can be addressed: dots, colons, and slashes too (sent as %2F or plainly; these
# collections have no nested routes, so the rest of the path is the id).
# [\s\S] rather than ".": an id holding a line break can be ingested, so it can be addressed too.
EXTERNAL_ID_PATTERN = r"[\s\S]+"
# items/embeddings/refresh/ is the training app's command on the item collection: it wins over an item
# whose id is "embeddings/refresh".
ITEM_ID_PATTERN = r"(?!embeddings/refresh/$)[\s\S]+"


class ExternalIdViewSet(viewsets.ModelViewSet):
    """Rows addressed by external id; an id PostgreSQL could not even compare (a NUL byte) is simply not found."""

    permission_classes = [RolePermissions]
    lookup_field = "external_id"
    lookup_value_regex = EXTERNAL_ID_PATTERN

    def get_object(self):
        if text_problem(self.kwargs[self.lookup_field]):
            raise NotFound("No such id: it holds a character no stored id can hold.")
        return super().get_object()


class ItemViewSet(ExternalIdViewSet):
    """Items that can be recommended, addressed by their external id."""

    queryset = Item.objects.all()
    serializer_class = ItemSerializer
    filterset_class = ItemFilter
    lookup_value_regex = ITEM_ID_PATTERN
    ordering_fields = ["id", "external_id", "title", "updated_at"]

    # Serving keeps its list of the items added after training while the catalogue version holds.
    def perform_create(self, serializer: BaseSerializer) -> None:
        super().perform_create(serializer)
        catalog_version_bump()

    def perform_update(self, serializer: BaseSerializer) -> None:
        super().perform_update(serializer)
        catalog_version_bump()

    def perform_destroy(self, instance: Item) -> None:
        super().perform_destroy(instance)
        catalog_version_bump()


class EndUserViewSet(ExternalIdViewSet):
    """The end users recommendations are made for (not platform accounts)."""

    queryset = EndUser.objects.all()
    serializer_class = EndUserSerializer
    filterset_class = EndUserFilter
    ordering_fields = ["id", "external_id", "updated_at"]

    def perform_destroy(self, instance: EndUser) -> None:
        """Their events go, every run is cleared of their data and marked, and the deletion is audited."""
        end_user_delete(user=instance, actor=self.request.user)


class InteractionCursorPagination(CursorPagination):
    # Event tables grow to millions of rows: a cursor avoids counting them on every page.
    ordering = "-id"
    page_size_query_param = "page_size"
    max_page_size = settings.API_MAX_PAGE_SIZE


class InteractionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Interaction events: list and filter them, or ingest a batch with POST."""

    # Ingesting needs catalog.add_interaction; reading needs catalog.view_interaction.
    permission_classes = [RolePermissions]
    queryset = Interaction.objects.select_related("user", "item")
    serializer_class = InteractionSerializer
    filterset_class = InteractionFilter
    pagination_class = InteractionCursorPagination
    parser_classes = [StorableJSONParser]
    ordering_fields: list[str] = []

    @extend_schema(
        request=EventBatchInputSerializer,
        responses={201: IngestResultSerializer},
        summary="Ingest a batch of events",
        description=(
            f"Up to {settings.INGEST_MAX_BATCH} events, validated all-or-nothing: one bad event answers 400 "
            "listing each bad event's index and field errors, and nothing is stored. A number beyond a double's "
            "range (NaN, Infinity, 1e400, an integer of over 308 digits) is refused as the body is read, named by "
            "its place: `errors.events.3.value`. Events whose `event_id` "
            "is already stored are skipped (counted as duplicates), so a replayed batch adds nothing. "
            "`create_missing` (default true) creates unknown users and items; false rejects such events."
        ),
    )
    def create(self, request: Request) -> Response:
        body = request.data
        if not isinstance(body, dict):
            raise ValidationFailed("bad body", detail={"detail": "expected an object with an 'events' list"})
        create_missing = body.get("create_missing", True)
        if not isinstance(create_missing, bool):
            raise ValidationFailed("bad flag", detail={"create_missing": ["must be true or false"]})
        events = events_parse(body.get("events"), max_events=settings.INGEST_MAX_BATCH)
        result = interactions_ingest(events=events, create_missing=create_missing)
        return Response(IngestResultSerializer(result).data, status=status.HTTP_201_CREATED)
