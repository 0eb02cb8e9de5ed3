"""What each token scope may call, named by URL name and HTTP method.

The list is closed: an operation not named here is refused to a scoped token, so a new endpoint is
reachable only by full tokens and logged-in accounts until someone decides otherwise.
"""

from accounts.models import TokenScope

_UPDATES = ("PUT", "PATCH")
_READS = ("GET", "HEAD")

SCOPE_OPERATIONS: dict[str, frozenset[tuple[str, str]]] = {
    TokenScope.INGEST: frozenset(
        [("interaction-list", "POST"), ("item-list", "POST"), ("end-user-list", "POST")]
        + [(name, method) for name in ("item-detail", "end-user-detail") for method in _UPDATES]
    ),
    TokenScope.RECOMMEND: frozenset(
        [(name, method) for name in ("recommendations", "predictions", "similar-items") for method in _READS]
        + [("recommendations", "POST")]  # an anonymous session's recommendations: a read with a body
    ),
}

# The permission an account's role needs for a token of the scope to be of any use.
SCOPE_NEEDS = {
    TokenScope.INGEST: "catalog.add_interaction",
    TokenScope.RECOMMEND: "scenarios.view_scenario",
    TokenScope.FULL: None,
}


def scope_allows(*, scope: str, url_name: str | None, method: str) -> bool:
    if scope == TokenScope.FULL:
        return True
    return (url_name, method) in SCOPE_OPERATIONS.get(scope, frozenset())
