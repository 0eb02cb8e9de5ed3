"""The Redis cache keeps one client per connection pool (recsys_site.cache)."""

import redis
from django.core.cache import caches

from recsys_site.cache import RedisCache


def test_cache_operations_build_no_new_redis_client_after_the_first(monkeypatch):
    backend = caches["default"]
    assert isinstance(backend, RedisCache)
    backend.get("warm-up")
    built = []
    build = redis.Redis.__init__
    monkeypatch.setattr(
        redis.Redis, "__init__", lambda client, *args, **kwargs: built.append(1) or build(client, *args, **kwargs)
    )

    for value in range(5):
        backend.set("kept-client", value)
        assert backend.get("kept-client") == value
    backend.delete("kept-client")

    assert built == []
