from django.conf import settings
from rest_framework.pagination import PageNumberPagination


class StandardPagination(PageNumberPagination):
    """Page-number pagination; clients may ask for ``page_size`` up to a server maximum."""

    page_size_query_param = "page_size"

    @property
    def max_page_size(self) -> int:
        # Read per request, so the setting is the one in force (tests lower it).
        return settings.API_MAX_PAGE_SIZE
