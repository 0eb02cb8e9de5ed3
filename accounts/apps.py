from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts and API tokens"

    def ready(self) -> None:
        # Registers the token scheme with drf-spectacular (an extension is found by being imported).
        from accounts import schema  # noqa: F401
        from accounts.signals import access_signals_connect

        access_signals_connect()
