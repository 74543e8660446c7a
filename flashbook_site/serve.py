"""The web server: uvicorn worker processes, each listening on a socket of its own.

    python -m flashbook_site.serve [--host 127.0.0.1] [--port 8000] [--workers 2] [options]

`uvicorn --workers N` gives its workers one shared listening socket, and a worker woken by a new
connection accepts every connection waiting. Connections that arrive together (a client pool
opening, a proxy reconnecting) then land on one worker: in the order-entry benchmark, 32
connections split 26/6 or even 32/0 between two workers, and one core served the load while the
other idled. Here each worker binds its own socket to the same address with `SO_REUSEPORT`, and
the kernel spreads new connections over the workers by a hash of their addresses.

The supervision is uvicorn's: a worker that dies is started again; SIGINT or SIGTERM stops every
worker the way uvicorn stops (requests in flight finish, up to `--graceful-timeout` seconds); a
worker whose supervisor is gone (killed outright) stops by itself within a second.
Each worker is a `uvicorn.Server`, so everything else — the protocol, the proxy headers, logging —
is uvicorn's too.
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import os
import signal
import socket
import sys
import threading
import time
from typing import Any

logger = logging.getLogger("uvicorn.error")

APP = "flashbook_site.asgi:application"
RESTART_PAUSE_SECONDS = 0.5  # between restarts of a worker that keeps dying at once
SUPERVISOR_CHECK_SECONDS = 1.0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m flashbook_site.serve", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--app", default=APP, help=f"the ASGI application (default {APP})")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    parser.add_argument(
        "--forwarded-allow-ips",
        default=None,
        help="addresses whose X-Forwarded-* headers are trusted (uvicorn's option; '*': any)",
    )
    parser.add_argument("--no-access-log", action="store_true")
    parser.add_argument("--log-level", default="info")
    parser.add_argument("--log-config", default=None, help="a logging configuration file")
    parser.add_argument("--lifespan", choices=("auto", "on", "off"), default="auto")
    parser.add_argument("--graceful-timeout", type=float, default=30.0)
    return parser


def uvicorn_options(args: argparse.Namespace) -> dict[str, Any]:
    """Keyword arguments of `uvicorn.Config` for one worker."""
    options: dict[str, Any] = {
        "app": args.app,
        "host": args.host,
        "port": args.port,
        "proxy_headers": True,
        "access_log": not args.no_access_log,
        "log_level": args.log_level,
        "lifespan": args.lifespan,
        "timeout_graceful_shutdown": args.graceful_timeout,
    }
    if args.forwarded_allow_ips is not None:
        options["forwarded_allow_ips"] = args.forwarded_allow_ips
    if args.log_config is not None:
        options["log_config"] = args.log_config
    return options


def listening_socket(host: str, port: int) -> socket.socket:
    """A socket bound to (host, port) that other processes may bind too (`SO_REUSEPORT`)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


def serve_worker(options: dict[str, Any], supervised: bool = False) -> None:
    """One worker: its own socket, one uvicorn server (which handles SIGINT and SIGTERM)."""
    import uvicorn

    sock = listening_socket(options["host"], options["port"])
    server = uvicorn.Server(uvicorn.Config(**options))
    if supervised:
        _stop_with_supervisor(server)
    server.run(sockets=[sock])


def _stop_with_supervisor(server) -> None:
    """Stops the server (gracefully) once its supervisor is gone, however it went — a worker of a
    supervisor killed outright must not keep the port and serve on unsupervised."""
    supervisor = os.getppid()

    def watch() -> None:
        while os.getppid() == supervisor:
            time.sleep(SUPERVISOR_CHECK_SECONDS)
        logger.warning("Supervisor [%d] gone: stopping worker [%d]", supervisor, os.getpid())
        server.should_exit = True

    threading.Thread(target=watch, name="supervisor-watch", daemon=True).start()


class Supervisor:
    """Keeps `workers` processes of `serve_worker` running until told to stop."""

    def __init__(self, options: dict[str, Any], workers: int, graceful_timeout: float) -> None:
        self.options = options
        self.count = workers
        self.graceful_timeout = graceful_timeout
        self.context = multiprocessing.get_context("spawn")  # no state shared with this process
        self.processes: list[multiprocessing.process.BaseProcess] = []
        self.stopping = threading.Event()

    def _start(self) -> multiprocessing.process.BaseProcess:
        process = self.context.Process(target=serve_worker, args=(self.options, True), daemon=False)
        process.start()
        logger.info("Started worker process [%d]", process.pid)
        return process

    def run(self) -> int:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: self.stopping.set())
        # The first bind here: a port taken by another program fails now, with a clear error,
        # rather than in every worker over and over.
        listening_socket(self.options["host"], self.options["port"]).close()
        logger.info(
            "Serving on http://%s:%d with %d workers, one socket each",
            self.options["host"],
            self.options["port"],
            self.count,
        )
        self.processes = [self._start() for _ in range(self.count)]
        while not self.stopping.wait(RESTART_PAUSE_SECONDS):
            for index, process in enumerate(self.processes):
                if not process.is_alive() and not self.stopping.is_set():
                    logger.warning(
                        "Worker process [%d] exited (code %s): starting another",
                        process.pid,
                        process.exitcode,
                    )
                    self.processes[index] = self._start()
        return self.stop()

    def stop(self) -> int:
        for process in self.processes:
            if process.is_alive():
                os.kill(process.pid, signal.SIGTERM)  # uvicorn's graceful shutdown
        for process in self.processes:
            process.join(self.graceful_timeout + 5)
            if process.is_alive():
                logger.warning("Worker process [%d] did not stop: killed", process.pid)
                process.kill()
                process.join()
        logger.info("Stopped %d workers", len(self.processes))
        return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.workers < 1:
        _parser().error("--workers must be at least 1")
    if args.port == 0:
        _parser().error("--port 0 would give every worker a port of its own: name one")
    options = uvicorn_options(args)
    if args.workers == 1:
        serve_worker(options)  # no supervisor for one process: as `uvicorn` itself runs
        return 0
    import uvicorn

    uvicorn.Config(**options)  # sets up logging as the workers have it (--log-config, JSON)
    return Supervisor(options, args.workers, args.graceful_timeout).run()


if __name__ == "__main__":
    sys.exit(main())
