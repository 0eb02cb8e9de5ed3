"""API rate limits, counted in the shared cache (Redis): one per client token or logged-in account, one per
client address. Rates come from ``settings.RECSYS_THROTTLE_RATES`` when each request is handled, so they can be
changed without restarting a class-level setting.

A limit of ``N`` requests per duration ``D`` is kept as a sliding window over two fixed windows of length ``D``:
the requests allowed in the current window, plus those of the window before weighted by the share of it that is
still within ``D`` of now. Each window's count is one integer, checked and incremented in one atomic step (a
script that Redis runs whole), so every process's requests are counted, none lost, and a check costs the same at a
client's thousandth request of a minute as at its first. DRF's own throttle keeps a list of timestamps per client
instead, read, rewritten and sent whole at every request (1,200 of them at the default token rate), and two
processes that read it at the same moment each write back their own copy, so one request goes uncounted. Only
allowed requests count: a client that keeps asking above its limit is served at the limit.
"""

from __future__ import annotations

import threading
from typing import Any

from django.conf import settings
from django.core.cache import DEFAULT_CACHE_ALIAS, caches
from django.core.cache.backends.redis import RedisCache
from rest_framework.throttling import SimpleRateThrottle

from accounts.models import ApiToken

# KEYS: the current window's count, the last window's. ARGV: the limit, the last window's weight, the current
# window's lifetime in seconds. Returns whether the request is allowed, and the two counts it was judged by.
_CHECK_AND_COUNT = """
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
local previous = tonumber(redis.call('GET', KEYS[2]) or '0')
if previous * tonumber(ARGV[2]) + current + 1 > tonumber(ARGV[1]) then
  return {0, current, previous}
end
if redis.call('INCR', KEYS[1]) == 1 then
  redis.call('EXPIRE', KEYS[1], ARGV[3])
end
return {1, current, previous}
"""
_scripts: dict[int, Any] = {}  # per Redis client: the script above, registered with it
_scripts_lock = threading.Lock()


class _SettingsRateThrottle(SimpleRateThrottle):
    num_requests: int  # parsed from the rate by DRF (both None without a rate, never read then)
    duration: int  # seconds
    current = previous = 0  # the counts the last check was judged by
    elapsed = 0.0  # seconds since the current window began

    def get_rate(self) -> str | None:
        return settings.RECSYS_THROTTLE_RATES.get(self.scope or "")

    def allow_request(self, request, view) -> bool:
        if self.rate is None:
            return True
        self.key = self.get_cache_key(request, view)
        if self.key is None:
            return True
        self.now = self.timer()
        window, self.elapsed = divmod(self.now, self.duration)
        names = [f"{self.key}:{int(window)}", f"{self.key}:{int(window) - 1}"]  # the current window, the last
        weight = 1.0 - self.elapsed / self.duration
        lifetime = 2 * self.duration + 1  # read as the last window through the next one
        backend = caches[DEFAULT_CACHE_ALIAS]  # this thread's, behind the proxy that DRF's ``self.cache`` is
        if isinstance(backend, RedisCache):
            keys = [backend.make_and_validate_key(name) for name in names]
            allowed, self.current, self.previous = _script(backend)(keys, [self.num_requests, weight, lifetime])
            return bool(allowed)
        # Any other cache (``locmem://``: each process its own) through its API, not atomic.
        counts = backend.get_many(names)
        self.current, self.previous = counts.get(names[0], 0), counts.get(names[1], 0)
        if self.previous * weight + self.current + 1 > self.num_requests:
            return False
        backend.set(names[0], self.current + 1, lifetime)
        return True

    def wait(self) -> float | None:
        """Seconds until a request would be allowed again, if no other one is."""
        limit, duration = self.num_requests, self.duration  # a refused request had a rate
        if self.current + 1 <= limit:  # the last window's weight must fall
            needed = 1.0 - (limit - 1 - self.current) / self.previous if self.previous else 0.0
            return max(duration * needed - self.elapsed, 0.0)
        # This window is full: wait for the next, until this one's weight there has fallen enough.
        return duration - self.elapsed + duration * max(1.0 - (limit - 1) / self.current, 0.0)


def _script(cache: RedisCache) -> Any:
    client = cache._cache.get_client(write=True)  # the raw Redis client behind Django's cache
    script = _scripts.get(id(client))
    if script is None:
        with _scripts_lock:
            script = _scripts.setdefault(id(client), client.register_script(_CHECK_AND_COUNT))
    return script


class ClientRateThrottle(_SettingsRateThrottle):
    """Per token (each client its own budget), or per account for a browser session."""

    scope = "token"

    def get_cache_key(self, request, view) -> str | None:
        if isinstance(request.auth, ApiToken):
            ident = f"token-{request.auth.token_key}"
        elif request.user and request.user.is_authenticated:
            ident = f"user-{request.user.pk}"
        else:
            return None
        return self.cache_format % {"scope": self.scope, "ident": ident}


class AddressRateThrottle(_SettingsRateThrottle):
    """Per client address, whoever is asking (REMOTE_ADDR, or the proxy's X-Forwarded-For behind one)."""

    scope = "address"

    def get_cache_key(self, request, view) -> str:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}
