from django.conf import settings
from rest_framework.pagination import PageNumberPagination


class StandardPagination(PageNumberPagination):
    """Page-number pagination; clients may ask for ``page_size`` up to a server maximum."""

    page_size_query_param = "page_size"

    def __init__(self) -> None:
        # A paginator is made per request: the setting read here is the one in force (tests lower it).
        self.max_page_size = settings.API_MAX_PAGE_SIZE
