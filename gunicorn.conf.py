"""Gunicorn settings for the container image (and any other production host).

gthread workers: each worker process serves `GUNICORN_THREADS` requests at once,
which suits a Django app that waits on PostgreSQL and Redis far more than it
computes. Gunicorn reads the variables itself; they are listed in README.md.
"""

import os

bind = f"0.0.0.0:{os.environ.get('PORT', '8000')}"
worker_class = "gthread"
# WEB_CONCURRENCY is gunicorn's own variable for the worker count.
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = 20
# Longer than a typical load balancer idle timeout, so the balancer closes first.
keepalive = 75
# Recycle workers now and then so a slow leak cannot grow without bound.
max_requests = 2000
max_requests_jitter = 200
accesslog = "-"
errorlog = "-"
# Worker heartbeats go to a tmpfs: on a container's overlay /tmp they can stall the worker.
_SHM = "/dev/shm"  # noqa: S108 - gunicorn's documented heartbeat directory, not a temp file
worker_tmp_dir = _SHM if os.path.isdir(_SHM) else None
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
