"""``siyu serve --processes N``: N server processes on one port, each with a listening socket of
its own (``SO_REUSEPORT``), so the kernel spreads connections evenly across them.

With one socket shared by all processes, whichever process is awake accepts: the long-lived
keep-alive connections of SDKs and proxies pile onto one process while another idles. Here each
process accepts only the connections the kernel hashes to its socket. The supervising process
opens the sockets (a port in use is reported at once), starts the processes, starts a new one on
the same socket when one dies, and stops them all on SIGINT or SIGTERM.
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
import socket
import threading
from multiprocessing.process import BaseProcess
from types import FrameType

log = logging.getLogger(__name__)

APP = "siyu.api.app:serving_app"
BACKLOG = 2048


def listening_sockets(host: str, port: int, count: int) -> list[socket.socket]:
    """``count`` sockets listening on one address, the kernel balancing connections across them."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(family, socket.SOCK_STREAM)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind((host, port))
            sock.listen(BACKLOG)
            sock.set_inheritable(True)
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    return sockets


def _serve_one(sock: socket.socket, access_log: bool, log_level: str) -> None:
    import uvicorn

    config = uvicorn.Config(APP, factory=True, access_log=access_log, log_level=log_level)
    uvicorn.Server(config).run(sockets=[sock])


class Supervisor:
    """Runs one server process per socket until stopped."""

    def __init__(
        self, sockets: list[socket.socket], access_log: bool, log_level: str = "info", restart_pause_s: float = 1.0
    ) -> None:
        self._sockets = sockets
        self._args = (access_log, log_level)
        self._pause = restart_pause_s
        self._context = multiprocessing.get_context("spawn")
        self._processes: list[BaseProcess] = []
        self._stopping = threading.Event()

    def _start(self, sock: socket.socket) -> BaseProcess:
        process = self._context.Process(target=_serve_one, args=(sock, *self._args), name="siyu-server")
        process.start()
        return process

    def run(self) -> None:
        """Start the processes and keep them running until :meth:`stop`."""
        self._processes = [self._start(sock) for sock in self._sockets]
        while not self._stopping.wait(0.5):
            for n, process in enumerate(self._processes):
                if not process.is_alive() and not self._stopping.is_set():
                    log.warning("server process %s exited with %s; starting another", process.pid, process.exitcode)
                    self._processes[n] = self._start(self._sockets[n])
                    self._stopping.wait(self._pause)  # a process failing at start does not spin
        for process in self._processes:
            process.terminate()  # SIGTERM: uvicorn finishes the requests in flight
        for process in self._processes:
            process.join(30)
            if process.is_alive():
                process.kill()
                process.join()
        for sock in self._sockets:
            sock.close()

    def stop(self, *_args: object) -> None:
        self._stopping.set()


def serve_processes(host: str, port: int, processes: int, access_log: bool = True, log_level: str = "info") -> None:
    supervisor = Supervisor(listening_sockets(host, port, processes), access_log, log_level)

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("stopping %d server processes (signal %d)", processes, signum)
        supervisor.stop()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    log.info("serving on %s:%d with %d processes", host, port, processes)
    supervisor.run()
