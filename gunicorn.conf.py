"""gunicorn's settings for the web tier, read from the working directory by ``gunicorn recsys_site.wsgi``.

Threaded workers keep idle keep-alive connections in an event loop and give a worker only connections that have
sent a request: with the default synchronous workers, a client that opened a connection and has not written yet
(a pooled HTTP client between calls) holds a whole worker until it writes or the timeout passes, and every other
request waits behind it. One thread per worker by default: requests in one process share its interpreter lock,
so more threads mostly add waiting; scale with processes (``-w`` or ``WEB_CONCURRENCY``) as torch's threads do
(``RECSYS_WEB_TORCH_THREADS``). ``GUNICORN_THREADS`` raises it where requests mostly wait on other services.
"""

import os

worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "1"))
keepalive = 5  # seconds an idle keep-alive connection is kept open
