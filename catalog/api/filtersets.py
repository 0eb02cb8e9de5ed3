from datetime import UTC

import django_filters
from django.core.exceptions import ValidationError
from django_filters.fields import IsoDateTimeField

from catalog.models import EndUser, Interaction, Item


class UtcIsoDateTimeField(IsoDateTimeField):
    """An ISO 8601 time in UTC: Python reads offsets up to ±23:59, PostgreSQL only up to ±15:59."""

    def to_python(self, value):
        moment = super().to_python(value)
        if moment is None:
            return None
        try:
            return moment.astimezone(UTC)
        except OverflowError:
            raise ValidationError("This time is out of range.", code="invalid") from None


class UtcIsoDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = UtcIsoDateTimeField


class ItemFilter(django_filters.FilterSet):
    title = django_filters.CharFilter(lookup_expr="icontains")
    category = django_filters.CharFilter(method="filter_category", label="Items in this category")
    updated_after = UtcIsoDateTimeFilter(field_name="updated_at", lookup_expr="gte")

    class Meta:
        model = Item
        fields = ["external_id", "is_active"]

    def filter_category(self, queryset, name, value):
        return queryset.filter(categories__contains=[value])


class EndUserFilter(django_filters.FilterSet):
    class Meta:
        model = EndUser
        fields = ["external_id"]


class InteractionFilter(django_filters.FilterSet):
    user = django_filters.CharFilter(field_name="user__external_id", label="End user external id")
    item = django_filters.CharFilter(field_name="item__external_id", label="Item external id")
    occurred_after = UtcIsoDateTimeFilter(field_name="occurred_at", lookup_expr="gte")
    occurred_before = UtcIsoDateTimeFilter(field_name="occurred_at", lookup_expr="lt")

    class Meta:
        model = Interaction
        fields = ["kind", "event_id"]
