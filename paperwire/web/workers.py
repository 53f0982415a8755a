"""Several server processes on one port, each with its own listening socket (SO_REUSEPORT).

Why not uvicorn's ``--workers``: its processes share one listening socket, and whichever
event loop wakes first accepts every connection that is waiting. A client that opens its
connections in a burst (a reverse proxy's keep-alive pool, a load tester) can land all of
them on one process while the others idle: measured on 2 cores with 2 workers and 16
connections, two runs in three put every connection on one worker, which then served 146
search requests/s against 303 with both busy (bench/load_web.py, BENCHMARKS.md). With
SO_REUSEPORT each process has its own accept queue and the kernel spreads new connections
over them by a hash of the client address and port, so no process can take them all.

Linux only (elsewhere SO_REUSEPORT does not balance): :func:`available` says whether to use it.
"""

from __future__ import annotations

import multiprocessing
import signal
import socket
import sys
import threading
import time

import click

BACKLOG = 2048  # uvicorn's default
# A worker that exits sooner than this after its start failed to start (port taken, bad
# settings): stop instead of restarting it in a loop.
STARTUP_S = 10.0


def available() -> bool:
    """Whether the kernel balances connections over SO_REUSEPORT sockets (Linux)."""
    return sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def listener(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` that other processes may bind too (SO_REUSEPORT)."""
    sock = socket.socket(_family(host), socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(BACKLOG)
    return sock


def check_port_free(host: str, port: int) -> None:
    """Raise OSError if anything listens on ``host:port``. The probe binds *without*
    SO_REUSEPORT, so it also fails on another server's SO_REUSEPORT group, which our
    workers would otherwise join silently and split its traffic with."""
    with socket.socket(_family(host), socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((host, port))


def _worker(host: str, port: int, log_level: str) -> None:
    """One worker process: the app from the environment (``server.app_from_env``) on its own socket."""
    import uvicorn

    config = uvicorn.Config("paperwire.web.server:app_from_env", factory=True, log_level=log_level,
                            server_header=False, proxy_headers=False)  # see web/guard.py
    uvicorn.Server(config).run(sockets=[listener(host, port)])


def serve(host: str, port: int, workers: int, log_level: str) -> int:
    """Run ``workers`` worker processes until SIGINT/SIGTERM; a worker that dies later is
    replaced. Returns the exit code (1 when a worker failed to start)."""
    try:
        check_port_free(host, port)
    except OSError as exc:
        click.echo(f"error: cannot listen on {host}:{port}: {exc.strerror or exc}", err=True)
        return 1
    ctx = multiprocessing.get_context("spawn")  # a fresh interpreter: no state forked from the CLI
    stop = threading.Event()

    def start() -> tuple:
        proc = ctx.Process(target=_worker, args=(host, port, log_level), name="paperwire-worker")
        proc.start()
        return proc, time.monotonic()

    def on_signal(signum, frame) -> None:
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    procs = [start() for _ in range(workers)]
    code = 0
    try:
        while not stop.wait(0.5):
            for i, (proc, started) in enumerate(procs):
                if proc.is_alive():
                    continue
                if time.monotonic() - started < STARTUP_S:
                    click.echo(f"error: a worker process failed to start (exit code {proc.exitcode})", err=True)
                    code = 1
                    stop.set()
                    break
                click.echo(f"worker {proc.pid} exited (code {proc.exitcode}); starting another", err=True)
                procs[i] = start()
    finally:
        for proc, _ in procs:
            if proc.is_alive():
                proc.terminate()  # SIGTERM: uvicorn finishes the requests in flight, then exits
        for proc, _ in procs:
            proc.join(30)
            if proc.is_alive():
                proc.kill()
                proc.join(5)
        for s, handler in previous.items():
            signal.signal(s, handler)
    return code
