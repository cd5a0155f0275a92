"""Gunicorn settings for the container image (and any other production host).

gthread workers: each worker process serves `GUNICORN_THREADS` requests at once,
which suits a Django app that waits on PostgreSQL and Redis far more than it
computes. Gunicorn reads the variables itself; they are listed in README.md.
"""

import os
from pathlib import Path

from agentapi_admin import envconfig as cfg

# The same .env the Django settings read, so both sides agree on SECURE_PROXY_SSL_HEADER.
if cfg.boolean("READ_ENV_FILE", default=True):
    cfg.read_env_file(Path(__file__).resolve().parent / ".env")

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
# gunicorn's default turns X-Forwarded-Proto/-Ssl/-Protocol from a trusted peer into
# wsgi.url_scheme=https, which Django believes when SECURE_PROXY_SSL_HEADER is off: a
# client on the host could pose as HTTPS. Trust the one header Django reads, and only
# when a TLS proxy is declared to set it.
if cfg.boolean("SECURE_PROXY_SSL_HEADER", default=False):
    secure_scheme_headers = {"X-FORWARDED-PROTO": "https"}
else:
    secure_scheme_headers = {}
