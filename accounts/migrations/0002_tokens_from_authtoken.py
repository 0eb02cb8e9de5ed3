"""Carry DRF authtoken tokens over to hashed ApiTokens, then drop the plaintext table.

Before this project used django-rest-knox, API tokens were DRF's ``authtoken`` keys, stored as plain text.
Each becomes a ``full`` token of the same account with the same secret (so clients keep working), stored as a
digest and expiring in 90 days; the old table, whose app is no longer installed, is dropped.
"""

import hashlib
from datetime import timedelta

from django.db import migrations
from django.utils import timezone
from knox.crypto import hash_token

LEGACY_TABLE = "authtoken_token"
KEY_LENGTH = 15  # knox's CONSTANTS.TOKEN_KEY_LENGTH


def forwards(apps, schema_editor):
    connection = schema_editor.connection
    if LEGACY_TABLE not in connection.introspection.table_names():
        return
    ApiToken = apps.get_model("accounts", "ApiToken")
    User = apps.get_model("auth", "User")
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT key, user_id FROM {LEGACY_TABLE}")
        rows = cursor.fetchall()
    expiry = timezone.now() + timedelta(days=90)
    passwords = dict(User.objects.filter(pk__in=[user_id for _, user_id in rows]).values_list("pk", "password"))
    ApiToken.objects.bulk_create(
        ApiToken(
            digest=hash_token(key),
            token_key=key[:KEY_LENGTH],
            user_id=user_id,
            expiry=expiry,
            scope="full",
            name="carried over from the plain-text token",
            password_fingerprint=hashlib.sha256(passwords[user_id].encode()).hexdigest(),
        )
        for key, user_id in rows
    )
    schema_editor.execute(f"DROP TABLE {LEGACY_TABLE}")


class Migration(migrations.Migration):
    dependencies = [("accounts", "0001_initial"), ("auth", "0012_alter_user_first_name_max_length")]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
