"""Serving QALITEL Host: ``gunicorn -c gunicorn.conf.py wsgi:app`` (what ``make run`` does).

Defaults: ``127.0.0.1:5000``, threaded workers (``gthread``, 4 threads each), and one worker
unless the throttle's counters are shared (``QALITEL_RATELIMIT_STORAGE_URI=redis://…``), then
two. Command-line flags win (``-b 0.0.0.0:8000``, ``-w 4``), but several workers on the
in-memory throttle are refused at start-up: each worker would count sign-in attempts on its
own and grant the documented attempts once per worker (:func:`core.throttle.worker_rule`).
"""

import os

from core import throttle

_storage = os.environ.get("QALITEL_RATELIMIT_STORAGE_URI") or "memory://"

bind = ["127.0.0.1:5000"]
worker_class = "gthread"
threads = 4
workers = 2 if throttle.is_shared(_storage) else 1
timeout = 60
graceful_timeout = 20
accesslog = "-"
# gunicorn >= 25 opens a control socket at one path per user ($HOME/.gunicorn/gunicorn.ctl),
# which several servers on one host would fight over; nothing here uses it.
control_socket_disable = True


def on_starting(server):
    """Refuse a serving configuration the throttle cannot hold (gunicorn prints the error)."""
    problem = throttle.worker_rule(_storage, server.cfg.workers)
    if problem:
        raise RuntimeError(problem)
