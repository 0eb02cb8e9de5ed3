"""API rate limits, counted in the shared cache (Redis): one per client token or logged-in account, one per
client address. Rates come from ``settings.RECSYS_THROTTLE_RATES`` when each request is handled, so they can be
changed without restarting a class-level setting."""

from django.conf import settings
from rest_framework.throttling import SimpleRateThrottle

from accounts.models import ApiToken


class _SettingsRateThrottle(SimpleRateThrottle):
    def get_rate(self) -> str | None:
        return settings.RECSYS_THROTTLE_RATES.get(self.scope or "")


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
