"""Settings that mypy's Django plugin imports: the project's settings with a placeholder secret key.

The plugin only reads the settings (installed apps, models); it serves nothing, so it needs no real
key, and a developer or CI running ``mypy`` should not have to export one.
"""

import os

os.environ.setdefault("DJANGO_SECRET_KEY", "mypy-placeholder-key-it-never-signs-anything-0123456789abcdef")

from recsys_site.settings import *  # noqa: F403
