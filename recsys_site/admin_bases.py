"""Admin classes for rows that only the services write: the admin lists them and, at most, deletes them."""

from django.contrib import admin


class ListAndDeleteAdmin(admin.ModelAdmin):
    """Rows made elsewhere (a command, a job): nothing is added or edited here; deleting one is allowed."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class ReadOnlyAdmin(ListAndDeleteAdmin):
    """A record of what happened: listed and read only, never deleted here."""

    def has_delete_permission(self, request, obj=None):
        return False
