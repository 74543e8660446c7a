"""The web server: gunicorn supervising uvicorn workers, each with a listening socket of its own.

    gunicorn --config deploy/gunicorn.conf.py [--bind 0.0.0.0:8000] [--workers N]

Command-line options win over this file; the image's command adds the bind address and the proxy's
trust (Dockerfile). Everything not set here is gunicorn's or uvicorn's default.

Why `reuse_port`: with one listening socket shared by every worker (gunicorn's default, as
`uvicorn --workers`), the worker that wakes first accepts every connection waiting, so connections
that arrive together (a client pool opening, the proxy reconnecting) land on one worker — 37 of 40
in the measurement in docs/benchmarks.md, and one core serves while the other idles. With
`reuse_port` gunicorn (>= 25.1 here) has each worker bind a socket of its own to the address with
`SO_REUSEPORT`, and the kernel spreads new connections over the workers by a hash of their
addresses.
"""

import os
import signal
import threading
import time

# The ASGI application (gunicorn names the setting after WSGI; the worker class serves ASGI).
wsgi_app = "flashbook_site.asgi:application"
# uvicorn inside each worker (uvloop, httptools, WebSockets), from the `uvicorn-worker` package:
# `uvicorn.workers` is deprecated in favour of it.
worker_class = "uvicorn_worker.UvicornWorker"
# One worker per core on the deployment's machine (2 cores): WEB_WORKERS, as before.
workers = int(os.environ.get("WEB_WORKERS", "2"))
bind = ["127.0.0.1:8000"]
reuse_port = True

# SIGTERM: workers stop taking connections, requests in flight finish; after this many seconds
# the ones still running are killed.
graceful_timeout = 30
# A worker that has not told the master it is alive for this long (its event loop blocked) is
# killed and replaced. uvicorn's worker reports every timeout / 2 seconds.
timeout = 30
# An idle keep-alive connection is closed after this many seconds: uvicorn's own default, as the
# workers had before (the worker class passes gunicorn's setting on, whose default is 2 s).
keepalive = 5

# uvicorn's proxy headers are on: X-Forwarded-For/-Proto are trusted from these addresses. The
# image's command passes '*' (only the proxy reaches the web containers).
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")
# No access log, as before: a line per request would cost the workers CPU at order rates.
accesslog = None
# gunicorn's runtime control socket ($HOME/.gunicorn/gunicorn.ctl, shared by every gunicorn of the
# user) is not used.
control_socket_disable = True

# LOG_FORMAT=json (the image's default): gunicorn's and uvicorn's lines as one JSON object each,
# the formatter Django's own logging uses (settings.LOGGING), so a collector parses every process
# alike. The worker hands uvicorn's loggers gunicorn's handlers. Levels are left to --log-level.
JSON_LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "flashbook_site.logs.JsonFormatter"}},
    "handlers": {
        "default": {
            "class": "logging.StreamHandler",
            "formatter": "json",
            "stream": "ext://sys.stderr",
        }
    },
    "root": {"handlers": ["default"], "level": "INFO"},
    # gunicorn.access stays without a handler (accesslog above): no access lines.
    "loggers": {"gunicorn.error": {"handlers": ["default"], "propagate": False}},
}
logconfig_dict = JSON_LOGGING if os.environ.get("LOG_FORMAT") == "json" else {}


# --- A worker whose master is gone stops --------------------------------------------------------
# gunicorn's own workers check in their loop that their master is still their parent; uvicorn's
# worker does not, and one whose master was killed outright (SIGKILL, the OOM killer) would serve
# on unsupervised, holding the port. This watch stops it within MASTER_CHECK_SECONDS.

MASTER_CHECK_SECONDS = 0.5


def post_fork(server, worker) -> None:
    def watch() -> None:
        while os.getppid() == worker.ppid:
            time.sleep(MASTER_CHECK_SECONDS)
        worker.log.warning("Master [%d] gone: stopping worker [%d]", worker.ppid, os.getpid())
        if not worker.booted:
            os._exit(0)  # still loading the application: nothing in flight, nothing to finish
        os.kill(os.getpid(), signal.SIGTERM)  # uvicorn's graceful shutdown
        time.sleep(worker.cfg.graceful_timeout)
        os._exit(1)  # what the master would have done to a worker that did not stop in time

    threading.Thread(target=watch, name="master-watch", daemon=True).start()
