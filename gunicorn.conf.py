"""Gunicorn settings for the container image (and any other production host).

gthread workers: each worker process serves `GUNICORN_THREADS` requests at once,
which suits a Django app that waits on PostgreSQL and Redis far more than it
computes. Gunicorn reads the variables itself; they are listed in README.md.
"""

import os
import shutil
import tempfile
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
# No gunicorn access log: the app writes one line per request (LOG_FORMAT), with request id and tenant.
accesslog = None
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

# ------------------------------------------------------------- Prometheus metrics
# Workers write their metric values to files in PROMETHEUS_MULTIPROC_DIR so /metrics,
# answered by any worker, reports the sum over all of them. The directory is emptied
# when the master starts (values from a previous run would be added to this one's) and
# a dead worker's live gauges are dropped. The variable is set in the master before any
# worker exists (workers inherit it and import prometheus_client after the fork), and
# only there: reading this file must not change the environment of whoever reads it.
_METRICS_DIR = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or os.path.join(
    _SHM if os.path.isdir(_SHM) else tempfile.gettempdir(), f"agentapi-metrics-{os.getpid()}"
)


def on_starting(server):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = _METRICS_DIR
    shutil.rmtree(_METRICS_DIR, ignore_errors=True)
    os.makedirs(_METRICS_DIR, exist_ok=True)


def child_exit(server, worker):
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid, _METRICS_DIR)


def on_exit(server):
    shutil.rmtree(_METRICS_DIR, ignore_errors=True)


# ---------------------------------------------------------------- outbox courier
def post_worker_init(worker):
    # Invalidations committed while Redis was away by a process that is gone since: each
    # worker delivers them within TENANTS_OUTBOX_POLL_INTERVAL (docs/reliability.md).
    from django.conf import settings

    from tenants.services.outbox import outbox_courier_start

    outbox_courier_start(interval=settings.TENANTS_OUTBOX_POLL_INTERVAL)

    # Webhooks are sent by these couriers (and deliver_webhooks), never inside a request.
    from webhooks.services.delivery import webhooks_courier_start

    webhooks_courier_start(interval=settings.WEBHOOKS_POLL_INTERVAL)


# ----------------------------------------------------------------- JSON logs
# With LOG_FORMAT=json gunicorn's own lines (booting, worker exits) are JSON objects
# too, so the whole stream parses; the app's records use the same formatter.
if os.environ.get("LOG_FORMAT") == "json":
    logconfig_dict = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "agentapi_admin.logformat.JsonFormatter"}},
        "handlers": {
            "json_console": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}
        },
        "root": {"level": "INFO", "handlers": ["json_console"]},
        "loggers": {
            name: {"level": "INFO", "handlers": ["json_console"], "propagate": False, "qualname": name}
            for name in ("gunicorn.error", "gunicorn.access")
        },
    }
