import gc
import os
from importlib import import_module

import torch
from django.conf import settings
from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "recsys_site.settings")
application = get_wsgi_application()
# Import every view now, while the worker boots, rather than in its first request: the URLconf pulls in the
# dashboards (Plotly, SciPy), seconds of imports that would otherwise stall whichever request comes first.
import_module(settings.ROOT_URLCONF)
# Each web process scores one request at a time per thread: torch's default of one thread per core, in every
# process, makes concurrent requests fight over the cores. Workers are not web processes and keep the default.
torch.set_num_threads(settings.RECSYS_WEB_TORCH_THREADS)
# What is loaded by now lives as long as the process: keep it out of the cyclic collector's full passes, which
# otherwise walk all of it (a third of a million objects, 150 ms and more) in the middle of some request.
gc.collect()
gc.freeze()
