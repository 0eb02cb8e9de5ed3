from datetime import UTC, datetime

import pytest
from django.db import IntegrityError, transaction

from catalog.models import EndUser, Interaction, Item

pytestmark = pytest.mark.django_db
WHEN = datetime(2024, 1, 1, tzinfo=UTC)


def test_item_external_id_is_unique():
    Item.objects.create(external_id="i1", title="One")
    with pytest.raises(IntegrityError):
        Item.objects.create(external_id="i1", title="Other")


def test_item_external_id_cannot_be_empty():
    with pytest.raises(IntegrityError):
        Item.objects.create(external_id="")


def test_end_user_external_id_is_unique_and_not_empty():
    EndUser.objects.create(external_id="u1")
    with pytest.raises(IntegrityError), transaction.atomic():
        EndUser.objects.create(external_id="u1")
    with pytest.raises(IntegrityError):
        EndUser.objects.create(external_id="")


def test_interaction_event_id_is_unique_but_optional():
    user = EndUser.objects.create(external_id="u1")
    item = Item.objects.create(external_id="i1")
    Interaction.objects.create(user=user, item=item, occurred_at=WHEN)
    Interaction.objects.create(user=user, item=item, occurred_at=WHEN)  # no event id: no idempotency key
    Interaction.objects.create(user=user, item=item, occurred_at=WHEN, event_id="e1")
    with pytest.raises(IntegrityError), transaction.atomic():
        Interaction.objects.create(user=user, item=item, occurred_at=WHEN, event_id="e1")
    with pytest.raises(IntegrityError):
        Interaction.objects.create(user=user, item=item, occurred_at=WHEN, event_id="")


def test_deleting_an_item_deletes_its_interactions():
    user = EndUser.objects.create(external_id="u1")
    item = Item.objects.create(external_id="i1")
    Interaction.objects.create(user=user, item=item, occurred_at=WHEN)
    item.delete()
    assert Interaction.objects.count() == 0
