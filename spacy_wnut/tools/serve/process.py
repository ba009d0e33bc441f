"""The server process: the socket, uvicorn with our protocol, signals, draining, logging and the heap setting."""

import asyncio
import signal
import socket
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Union

import uvicorn

from ...errors import ConfigError
from .app import create_app
from .connections import guarded_protocol
from .service import Service
from .settings import ACCEPT_BACKLOG, ServeSettings, default_max_connections, logger


def _log_config() -> Dict[str, Any]:
    """uvicorn's logging, with this module's logger on its handler."""
    import copy

    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["spacy_wnut"] = {"handlers": ["default"], "level": "INFO", "propagate": False}
    return config


@contextmanager
def _stopping_quietly() -> Iterator[List[str]]:
    """Let a SIGINT/SIGTERM that uvicorn has handled (it drains, then raises the signal again) end the
    process with status 0, as a service's normal stop; the names of the signals are collected."""
    received: List[str] = []
    handled = (signal.SIGINT, signal.SIGTERM)
    previous = {sig: signal.getsignal(sig) for sig in handled}
    for sig in handled:
        signal.signal(sig, lambda signum, frame: received.append(signal.Signals(signum).name))
    try:
        yield received
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def limit_heap_growth(threshold: int) -> bool:
    """Make glibc serve allocations of `threshold` bytes and more with mmap, returned on free.

    Batches of varying sizes allocate tensors of ever new sizes; with glibc's dynamic threshold most
    land on the heap, whose freed holes the process keeps: RSS kept growing under bench/serve.py
    --memory (MiniLM-L6, torch: +31 MB over 17,500 requests) and stays flat with a fixed threshold
    (+3 MB at 1 MiB). `MALLOC_MMAP_THRESHOLD_` in the environment (glibc's own setting) wins.
    RETURNS (bool): whether the threshold was set.
    """
    import ctypes
    import os

    if threshold <= 0 or "MALLOC_MMAP_THRESHOLD_" in os.environ:
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc (macOS, musl): nothing to do
        return False
    m_mmap_threshold = -3
    return bool(libc.mallopt(m_mmap_threshold, threshold))


def listening_socket(host: str, port: int) -> socket.socket:
    """A socket bound to `host`:`port`, before anything is loaded: a port in use is a one-line error at once.

    RETURNS (socket.socket): the bound socket, for `uvicorn.Server.run(sockets=...)`.
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as err:
        raise ConfigError(f"--host {host}: not an address of this machine ({err.strerror})") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as err:
        sock.close()
        raise ConfigError(f"--host {host} --port {port}: cannot listen there ({err.strerror})") from None
    sock.set_inheritable(True)
    return sock


def serve(
    model: Union[str, Path],
    settings: Optional[ServeSettings] = None,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    access_log: bool = True,
) -> "Stopped":
    """Serve `model` over HTTP until SIGINT or SIGTERM, then drain the requests in flight and return.

    model (Union[str, Path]): pipeline directory or package name.
    settings (Optional[ServeSettings]): batching, limits, timeouts and engine.
    host (str): address to listen on.
    port (int): port to listen on (checked before the pipeline loads).
    access_log (bool): log one line per request.
    RETURNS (Stopped): how the stop went: requests answered 503, and whether a batch is still running.
    Raises `ConfigError` if the port cannot be listened on or the pipeline fails to load (the server stops then).
    """
    settings = settings or ServeSettings()
    sock = listening_socket(host, port)
    limit_heap_growth(settings.mmap_threshold)
    app = create_app(model, settings)
    service: Service = app.state.service
    max_connections = settings.max_connections or default_max_connections()
    protocol = guarded_protocol(settings.read_timeout, max_connections, service.metrics.connections_closed)
    config = uvicorn.Config(
        app,
        http=protocol,
        timeout_keep_alive=settings.keep_alive_timeout,
        backlog=ACCEPT_BACKLOG,
        # A backstop: `Service.begin_drain` answers what is left after drain_timeout itself.
        timeout_graceful_shutdown=settings.drain_timeout + 5,
        log_config=_log_config(),
        access_log=access_log,
        lifespan="on",
    )
    server = DrainingServer(config, service)
    service.on_load_error = server.stop_now
    with _stopping_quietly() as received:
        server.run(sockets=[sock])
    if service.load_error is not None:
        raise ConfigError(f"{model}: the pipeline failed to load: {service.load_error}")
    if received:
        if service.unanswered:
            logger.error(
                "stopped by %s: %d request(s) in flight got 503 instead of their answer (%s)",
                received[0],
                service.unanswered,
                service.abort_reason,
            )
        else:
            logger.info("stopped by %s after draining the requests in flight", received[0])
    return Stopped(service.unanswered, service.worker_busy)


@dataclass
class Stopped:
    """How a server's stop went.

    unanswered (int): requests in flight at the stop that got 503 instead of their answer (0: a complete drain).
    worker_busy (bool): the worker thread still runs a batch (or a load) whose result nobody waits for;
        the process should exit without waiting for it (`spacy wnut serve` does, with `os._exit`).
    """

    unanswered: int
    worker_busy: bool


class DrainingServer(uvicorn.Server):
    """`uvicorn.Server` whose stop answers what is still in flight after `drain_timeout` (or at a second
    SIGINT) with 503, instead of cancelling it.

    config (uvicorn.Config): the server's config.
    service (Service): the pipeline's service, told when the stop begins.
    """

    def __init__(self, config: uvicorn.Config, service: Service) -> None:
        super().__init__(config)
        self.service = service
        self._loop: Optional[asyncio.AbstractEventLoop] = None

    def stop_now(self) -> None:
        """Stop serving (the pipeline failed to load)."""
        self.should_exit = True

    def handle_exit(self, sig: int, frame: Any) -> None:
        super().handle_exit(sig, frame)
        if self.force_exit and self._loop is not None:  # a second SIGINT: answer everything now
            self._loop.call_soon_threadsafe(self.service.abort, "stopped at once by a second SIGINT")

    async def startup(self, sockets: Optional[List[socket.socket]] = None) -> None:
        self._loop = asyncio.get_running_loop()
        await super().startup(sockets=sockets)
        for sock in sockets or []:  # uvicorn names the address only for sockets it bound itself
            host, port = sock.getsockname()[:2]
            shown = f"[{host}]" if ":" in host else host
            logger.info(
                "listening on http://%s:%d (SIGTERM or Ctrl-C stops, draining the requests in flight)", shown, port
            )

    async def shutdown(self, sockets: Optional[List[socket.socket]] = None) -> None:
        self.service.begin_drain()
        await super().shutdown(sockets=sockets)
        if self.force_exit:  # uvicorn skips the lifespan's shutdown: let the 503s go out, then run it
            deadline = time.monotonic() + 1.0
            while self.service.in_flight and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.1)
            await self.lifespan.shutdown()
